// Command stream measures `kmsfix explain` on large generated inputs: wall time, CPU time
// and maximum resident memory of the kmsfix process (wait4 rusage), for mixed trail log
// files (10 % S3 KMS denials) and denial-only files at 1x, 10x and 100x sizes, plain and
// gzipped, and for decompression bombs and whitespace runs. It checks that every record got
// its report line. `make bench-stream` builds kmsfix and runs it; docs/streaming.md has the
// figures.
//
//	go run ./bench/stream -kmsfix dist/kmsfix-local [-dir /tmp/kmsfix-bench] [-max 1000000]
package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

func main() {
	kmsfix := flag.String("kmsfix", "", "the kmsfix binary to measure")
	dir := flag.String("dir", filepath.Join(os.TempDir(), "kmsfix-bench-stream"), "where the inputs are written (a few GB at -max 1000000)")
	maxRecords := flag.Int("max", 1_000_000, "records of the largest mixed input (the 100x size); denial inputs are a tenth")
	bombs := flag.Bool("bombs", true, "also run the decompression bombs and whitespace runs")
	flag.Parse()
	if *kmsfix == "" {
		fmt.Fprintln(os.Stderr, "stream: -kmsfix is required")
		os.Exit(2)
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		fail(err)
	}
	fmt.Println("| input | records | size | wall s | CPU s | records/s (CPU) | denials/s (CPU) | max RSS MiB | exit |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, n := range []int{*maxRecords / 100, *maxRecords / 10, *maxRecords} {
		for _, gz := range []bool{false, true} {
			run(*kmsfix, logFile(*dir, "mixed", n, 10, gz), n, n/10)
		}
	}
	for _, n := range []int{*maxRecords / 1000, *maxRecords / 100, *maxRecords / 10} {
		for _, gz := range []bool{false, true} {
			run(*kmsfix, logFile(*dir, "denials", n, 1, gz), n, n)
		}
	}
	// No denial at all: what reading and dropping costs.
	run(*kmsfix, logFile(*dir, "ignored", *maxRecords, 0, false), *maxRecords, 0)
	if *bombs {
		fmt.Println()
		fmt.Println("| input | size | wall s | CPU s | max RSS MiB | exit | stderr |")
		fmt.Println("|---|---:|---:|---:|---:|---:|---|")
		stringBomb := bomb(*dir, "string-1GiB.json.gz", func(w io.Writer) { writeString(w, 1<<30) })
		ws64 := bomb(*dir, "whitespace-64MiB.json.gz", func(w io.Writer) { writeSpaces(w, 64<<20) })
		ws256 := bomb(*dir, "whitespace-256MiB.json.gz", func(w io.Writer) { writeSpaces(w, 256<<20) })
		plainWS := plain(*dir, "whitespace-256MiB.json", func(w io.Writer) { writeSpaces(w, 256<<20) })
		plainString := plain(*dir, "string-256MiB.json", func(w io.Writer) { writeString(w, 256<<20) })
		for _, p := range []string{stringBomb, ws64, ws256, plainWS, plainString} {
			runBomb(*kmsfix, p)
		}
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "stream:", err)
	os.Exit(1)
}

// result is what one kmsfix run cost.
type result struct {
	wall, cpu     time.Duration
	maxRSS        int64 // bytes
	exit          int
	lines, denied int
	stderr        string
}

// measure runs kmsfix explain --json on path, counting report lines as they stream out.
func measure(kmsfix, path string) result {
	cmd := exec.Command(kmsfix, "explain", "--json", path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		fail(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &limited{w: &stderr, n: 400}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		fail(err)
	}
	var r result
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		r.lines++
		if bytes.Contains(sc.Bytes(), []byte(`"diagnosis":`)) {
			r.denied++
		}
	}
	_ = cmd.Wait()
	r.wall = time.Since(start)
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	r.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	r.maxRSS = ru.Maxrss * 1024 // kilobytes on Linux
	r.exit = cmd.ProcessState.ExitCode()
	r.stderr = strings.TrimSpace(stderr.String())
	return r
}

func run(kmsfix, path string, records, denials int) {
	r := measure(kmsfix, path)
	if r.lines != records || r.denied != denials || r.exit != 0 {
		fail(fmt.Errorf("%s: %d report lines (%d denials), exit %d, want %d (%d): %s", path, r.lines, r.denied, r.exit, records, denials, r.stderr))
	}
	fi, _ := os.Stat(path)
	sec := r.cpu.Seconds()
	fmt.Printf("| %s | %d | %s | %.2f | %.2f | %.0f | %.0f | %.1f | %d |\n", filepath.Base(path), records, size(fi.Size()),
		r.wall.Seconds(), sec, float64(records)/sec, float64(denials)/sec, float64(r.maxRSS)/(1<<20), r.exit)
}

func runBomb(kmsfix, path string) {
	r := measure(kmsfix, path)
	fi, _ := os.Stat(path)
	msg := r.stderr
	if i := strings.Index(msg, "\n"); i >= 0 {
		msg = msg[:i]
	}
	msg = strings.ReplaceAll(msg, path, filepath.Base(path))
	fmt.Printf("| %s | %s | %.2f | %.2f | %.1f | %d | %s |\n", filepath.Base(path), size(fi.Size()),
		r.wall.Seconds(), r.cpu.Seconds(), float64(r.maxRSS)/(1<<20), r.exit, strings.ReplaceAll(msg, "|", `\|`))
}

func size(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
}

// limited keeps the first n bytes written.
type limited struct {
	w io.Writer
	n int
}

func (l *limited) Write(p []byte) (int, error) {
	if l.n > 0 {
		k := min(l.n, len(p))
		l.w.Write(p[:k])
		l.n -= k
	}
	return len(p), nil
}

// logFile writes (once) a CloudTrail log file of n records, one in every denyEvery an S3 KMS
// denial; the others are S3 data events, KMS calls S3 made successfully and EC2 calls.
func logFile(dir, kind string, n, denyEvery int, gz bool) string {
	name := fmt.Sprintf("%s-%d.json", kind, n)
	if gz {
		name += ".gz"
	}
	path := filepath.Join(dir, name)
	if _, err := os.Stat(path); err == nil {
		return path
	}
	write(path, gz, func(w io.Writer) {
		bw := bufio.NewWriterSize(w, 1<<20)
		bw.WriteString(`{"Records":[`)
		for i := range n {
			if i > 0 {
				bw.WriteByte(',')
			}
			switch {
			case denyEvery > 0 && i%denyEvery == 0:
				fmt.Fprintf(bw, denialTmpl, i%97, i%97, i%97, i%97, stamp(i), i%97, i%997, i, uuid(i))
			case i%10 < 6:
				fmt.Fprintf(bw, s3Tmpl, i%97, i%97, stamp(i), i%997, i, uuid(i))
			case i%10 < 9:
				fmt.Fprintf(bw, kmsOKTmpl, i%97, i%97, stamp(i), i%997, i, uuid(i))
			default:
				fmt.Fprintf(bw, ec2Tmpl, i%97, i%97, stamp(i), uuid(i))
			}
		}
		bw.WriteString("]}\n")
		if err := bw.Flush(); err != nil {
			fail(err)
		}
	})
	return path
}

func write(path string, gz bool, body func(io.Writer)) {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		fail(err)
	}
	var w io.Writer = f
	var zw *gzip.Writer
	if gz {
		zw = gzip.NewWriter(f)
		w = zw
	}
	body(w)
	if zw != nil {
		if err := zw.Close(); err != nil {
			fail(err)
		}
	}
	if err := f.Close(); err != nil {
		fail(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		fail(err)
	}
}

func bomb(dir, name string, body func(io.Writer)) string {
	path := filepath.Join(dir, name)
	if _, err := os.Stat(path); err != nil {
		write(path, true, body)
	}
	return path
}

func plain(dir, name string, body func(io.Writer)) string {
	path := filepath.Join(dir, name)
	if _, err := os.Stat(path); err != nil {
		write(path, false, body)
	}
	return path
}

// writeString writes one record whose string member is n bytes long.
func writeString(w io.Writer, n int) {
	io.WriteString(w, `{"eventSource":"s3.amazonaws.com","eventID":"big","pad":"`)
	chunk := bytes.Repeat([]byte("x"), 1<<20)
	for ; n > 0; n -= len(chunk) {
		w.Write(chunk[:min(n, len(chunk))])
	}
	io.WriteString(w, `"}`)
}

// writeSpaces writes n bytes of whitespace, then one record.
func writeSpaces(w io.Writer, n int) {
	chunk := bytes.Repeat([]byte(" \n\t "), 1<<18)
	for ; n > 0; n -= len(chunk) {
		w.Write(chunk[:min(n, len(chunk))])
	}
	io.WriteString(w, `{"eventSource":"s3.amazonaws.com","eventName":"GetObject","eventID":"after-the-spaces"}`)
}

func stamp(i int) string {
	return time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * 10 * time.Millisecond).Format(time.RFC3339)
}

func uuid(i int) string {
	return fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", i*2654435761&0xffffffff, i&0xffff, i%4096, (i/7)%4096, i*40503)
}

// The records are shaped like real ones (events/01-identity-policy-missing, S3 data events);
// names vary so findings and principals differ.
const denialTmpl = `{"eventVersion":"1.11","userIdentity":{"type":"AssumedRole","principalId":"AROAEDZKLMNULMU4TI3JO:task-%d","arn":"arn:aws:sts::210987654321:assumed-role/app-%d/task","accountId":"210987654321","accessKeyId":"ASIAY7F3VXRZQWNTFUQU","sessionContext":{"sessionIssuer":{"type":"Role","principalId":"AROAEDZKLMNULMU4TI3JO","arn":"arn:aws:iam::210987654321:role/app/app-%d","accountId":"210987654321","userName":"app-%d"},"attributes":{"creationDate":"2026-11-27T00:00:00Z","mfaAuthenticated":"false"}},"invokedBy":"AWS Internal"},"eventTime":"%s","eventSource":"kms.amazonaws.com","eventName":"Decrypt","awsRegion":"eu-west-1","sourceIPAddress":"AWS Internal","userAgent":"AWS Internal","errorCode":"AccessDenied","errorMessage":"User: arn:aws:sts::210987654321:assumed-role/app-%d/task is not authorized to perform: kms:Decrypt on resource: arn:aws:kms:eu-west-1:210987654321:key/6f3c1a2e-8d4b-4e7a-9c15-2b7d90e4a3f1 because no identity-based policy allows the kms:Decrypt action","requestParameters":{"encryptionAlgorithm":"SYMMETRIC_DEFAULT","encryptionContext":{"aws:s3:arn":"arn:aws:s3:::amzn-s3-demo-orders/invoices/%d/INV-%d.pdf"}},"responseElements":null,"requestID":"3c104eb9-ae3b-4a45-a47d-98fbf8844ef3","eventID":"%s","readOnly":true,"resources":[{"accountId":"210987654321","type":"AWS::KMS::Key","ARN":"arn:aws:kms:eu-west-1:210987654321:key/6f3c1a2e-8d4b-4e7a-9c15-2b7d90e4a3f1"}],"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"210987654321","eventCategory":"Management"}`

const s3Tmpl = `{"eventVersion":"1.10","userIdentity":{"type":"AssumedRole","principalId":"AROAEDZKLMNULMU4TI3JO:task-%d","arn":"arn:aws:sts::210987654321:assumed-role/app-%d/task","accountId":"210987654321","accessKeyId":"ASIAY7F3VXRZQWNTFUQU","sessionContext":{"attributes":{"creationDate":"2026-11-27T00:00:00Z","mfaAuthenticated":"false"}}},"eventTime":"%s","eventSource":"s3.amazonaws.com","eventName":"GetObject","awsRegion":"eu-west-1","sourceIPAddress":"203.0.113.7","userAgent":"[aws-sdk-go-v2/1.30.0]","requestParameters":{"bucketName":"amzn-s3-demo-orders","Host":"amzn-s3-demo-orders.s3.eu-west-1.amazonaws.com","key":"invoices/%d/INV-%d.pdf"},"responseElements":null,"additionalEventData":{"SignatureVersion":"SigV4","CipherSuite":"TLS_AES_128_GCM_SHA256","bytesTransferredIn":0,"AuthenticationMethod":"AuthHeader","x-amz-id-2":"Zm9vYmFyYmF6","bytesTransferredOut":48213},"requestID":"9XQ1V2ZKD8A7B3C4","eventID":"%s","readOnly":true,"resources":[{"type":"AWS::S3::Object","ARN":"arn:aws:s3:::amzn-s3-demo-orders/invoices/x.pdf"},{"accountId":"210987654321","type":"AWS::S3::Bucket","ARN":"arn:aws:s3:::amzn-s3-demo-orders"}],"eventType":"AwsApiCall","managementEvent":false,"recipientAccountId":"210987654321","eventCategory":"Data"}`

const kmsOKTmpl = `{"eventVersion":"1.11","userIdentity":{"type":"AssumedRole","principalId":"AROAEDZKLMNULMU4TI3JO:task-%d","arn":"arn:aws:sts::210987654321:assumed-role/app-%d/task","accountId":"210987654321","invokedBy":"AWS Internal"},"eventTime":"%s","eventSource":"kms.amazonaws.com","eventName":"Decrypt","awsRegion":"eu-west-1","sourceIPAddress":"AWS Internal","userAgent":"AWS Internal","requestParameters":{"encryptionAlgorithm":"SYMMETRIC_DEFAULT","encryptionContext":{"aws:s3:arn":"arn:aws:s3:::amzn-s3-demo-orders/invoices/%d/INV-%d.pdf"}},"responseElements":null,"requestID":"3c104eb9-ae3b-4a45-a47d-98fbf8844ef3","eventID":"%s","readOnly":true,"resources":[{"accountId":"210987654321","type":"AWS::KMS::Key","ARN":"arn:aws:kms:eu-west-1:210987654321:key/6f3c1a2e-8d4b-4e7a-9c15-2b7d90e4a3f1"}],"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"210987654321","eventCategory":"Management"}`

const ec2Tmpl = `{"eventVersion":"1.09","userIdentity":{"type":"AssumedRole","principalId":"AROAEDZKLMNULMU4TI3JO:task-%d","arn":"arn:aws:sts::210987654321:assumed-role/app-%d/task","accountId":"210987654321"},"eventTime":"%s","eventSource":"ec2.amazonaws.com","eventName":"DescribeInstances","awsRegion":"eu-west-1","sourceIPAddress":"203.0.113.7","userAgent":"aws-cli/2.15.0","requestParameters":{"instancesSet":{},"filterSet":{}},"responseElements":null,"requestID":"c0ffee00-1111-2222-3333-444455556666","eventID":"%s","readOnly":true,"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"210987654321","eventCategory":"Management"}`
