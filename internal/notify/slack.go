package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/kmsfix/kmsfix/internal/retry"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"
	"github.com/slack-go/slack"
)

// SecretGetter is the one Secrets Manager call the Slack sender makes.
type SecretGetter interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// DeliveryError is a failed delivery to one channel. One a later attempt (a Lambda retry of
// the event) will not heal comes wrapped in retry.Permanent (see failed). Its text never
// holds the webhook URL.
type DeliveryError struct {
	Channel string // "slack" or "sns"
	Status  int    // the HTTP status Slack answered, when it answered with an error
	msg     string
}

func (e *DeliveryError) Error() string { return e.Channel + ": " + e.msg }

// failed returns de as the error of a delivery: marked retry.Permanent unless a retry of the
// event may succeed.
func failed(de *DeliveryError, retryable bool) error {
	if retryable {
		return de
	}
	return retry.Permanent(de)
}

// Rejected says Slack refused the webhook for good: a 4xx other than 429 (404 no_service or
// 403 invalid_token for a revoked webhook, 410 channel_is_archived, 400 invalid_payload).
// Slack answers webhook errors with these HTTP statuses ("Handling errors",
// https://api.slack.com/incoming-webhooks).
func (e *DeliveryError) Rejected() bool {
	return e.Channel == "slack" && e.Status >= 400 && e.Status < 500 && e.Status != http.StatusTooManyRequests
}

// webhook reads the incoming-webhook URL from Secrets Manager once per container. A failed
// read is not cached, so the next event tries again.
type webhook struct {
	secrets SecretGetter
	arn     string

	mu  sync.Mutex
	url string
}

func (w *webhook) get(ctx context.Context) (string, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.url != "" {
		return w.url, nil
	}
	out, err := w.secrets.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(w.arn)})
	if err != nil {
		return "", failed(&DeliveryError{Channel: "slack",
			msg: fmt.Sprintf("read webhook secret %s: %v", w.arn, err)}, secretRetryable(err))
	}
	u, err := ParseWebhookSecret(aws.ToString(out.SecretString))
	if err != nil {
		return "", failed(&DeliveryError{Channel: "slack", msg: fmt.Sprintf("webhook secret %s: %v", w.arn, err)}, false)
	}
	w.url = u
	return u, nil
}

// ParseWebhookSecret returns the webhook URL a Slack secret holds, as a plain string or as
// JSON {"url": "..."} (`kmsfix doctor` checks a secret with it). Its errors never quote the
// secret.
func ParseWebhookSecret(s string) (string, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "{") {
		var v struct {
			URL string `json:"url"`
		}
		if err := json.Unmarshal([]byte(s), &v); err != nil {
			return "", errors.New(`holds JSON without a string field "url"`)
		}
		s = strings.TrimSpace(v.URL)
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", errors.New("does not hold an http(s) URL")
	}
	return s, nil
}

// secretRetryable: a missing secret or a refused read will not heal by retrying the event.
func secretRetryable(err error) bool {
	var (
		missing *smtypes.ResourceNotFoundException
		decrypt *smtypes.DecryptionFailure
		param   *smtypes.InvalidParameterException
		request *smtypes.InvalidRequestException
		ae      smithy.APIError
	)
	switch {
	case errors.As(err, &missing), errors.As(err, &decrypt), errors.As(err, &param), errors.As(err, &request):
		return false
	case errors.As(err, &ae) && ae.ErrorCode() == "AccessDeniedException":
		// A common AWS error Secrets Manager's model has no type for: the code is all there is.
		return false
	}
	return true
}

// SlackSender posts webhook messages, honouring Retry-After on 429 and backing off on 5xx
// and network errors, within a total wait.
type SlackSender struct {
	hook        *webhook
	client      *http.Client
	maxAttempts int
	maxWait     time.Duration
	backoff     time.Duration
	sleep       func(context.Context, time.Duration) error
}

func newSlackSender(secrets SecretGetter, arn string, c Config) *SlackSender {
	s := &SlackSender{
		hook:        &webhook{secrets: secrets, arn: arn},
		client:      c.HTTPClient,
		maxAttempts: c.SlackAttempts,
		maxWait:     c.SlackMaxWait,
		backoff:     c.SlackBackoff,
		sleep:       c.Sleep,
	}
	if s.client == nil {
		s.client = &http.Client{Timeout: 10 * time.Second}
	}
	if s.maxAttempts <= 0 {
		s.maxAttempts = 4
	}
	if s.maxWait <= 0 {
		s.maxWait = 20 * time.Second
	}
	if s.backoff <= 0 {
		s.backoff = 500 * time.Millisecond
	}
	if s.sleep == nil {
		s.sleep = retry.Sleep
	}
	return s
}

// Send posts msg. Every error it returns is a *DeliveryError with the URL redacted (wrapped in
// retry.Permanent when a retry of the event will not heal it).
func (s *SlackSender) Send(ctx context.Context, msg *slack.WebhookMessage) error {
	u, err := s.hook.get(ctx)
	if err != nil {
		return err
	}
	var waited time.Duration
	for attempt := 1; ; attempt++ {
		err := slack.PostWebhookCustomHTTPContext(ctx, u, s.client, msg)
		if err == nil {
			return nil
		}
		wait, retryable := s.classify(err, attempt)
		if !retryable {
			de := &DeliveryError{Channel: "slack", msg: redact(err.Error(), u)}
			var status slack.StatusCodeError
			if errors.As(err, &status) {
				de.Status = status.Code
			}
			return failed(de, false)
		}
		if attempt >= s.maxAttempts || waited+wait > s.maxWait || !fits(ctx, wait) {
			return failed(&DeliveryError{Channel: "slack",
				msg: fmt.Sprintf("gave up after %d attempts (next wait %s): %s", attempt, wait, redact(err.Error(), u))}, true)
		}
		if err := s.sleep(ctx, wait); err != nil {
			return failed(&DeliveryError{Channel: "slack", msg: "waiting to retry: " + err.Error()}, true)
		}
		waited += wait
	}
}

// classify says how long to wait before the next attempt and whether one makes sense.
func (s *SlackSender) classify(err error, attempt int) (time.Duration, bool) {
	var limited *slack.RateLimitedError
	if errors.As(err, &limited) {
		return max(limited.RetryAfter, time.Second), true
	}
	backoff := s.backoff << (attempt - 1)
	backoff += rand.N(backoff/4 + 1) // jitter: containers hit by one storm do not retry in step
	var status slack.StatusCodeError
	if errors.As(err, &status) {
		// 400 invalid_payload, 403, 404 no_service, 410 channel_is_archived: retrying cannot help.
		return backoff, status.Code >= 500 || status.Code == http.StatusTooManyRequests
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return 0, true
	}
	return backoff, true // the network: worth another try
}

// fits says the wait leaves time before the invocation's deadline.
func fits(ctx context.Context, wait time.Duration) bool {
	if ctx.Err() != nil {
		return false
	}
	dl, ok := ctx.Deadline()
	return !ok || time.Until(dl) > wait+2*time.Second
}

// redact removes the webhook URL, and each long part of its path (the secret is the path),
// from text meant for logs and errors.
func redact(text, webhookURL string) string {
	if webhookURL == "" {
		return text
	}
	text = strings.ReplaceAll(text, webhookURL, "[slack-webhook]")
	if u, err := url.Parse(webhookURL); err == nil {
		for _, seg := range strings.Split(u.Path, "/") {
			if len(seg) >= 6 {
				text = strings.ReplaceAll(text, seg, "[redacted]")
			}
		}
		if q := u.RawQuery; len(q) >= 6 {
			text = strings.ReplaceAll(text, q, "[redacted]")
		}
	}
	return text
}
