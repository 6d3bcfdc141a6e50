// Package webhook is a destination that POSTs events to a URL, one event per
// request or one JSON array per batch.
//
// Every request carries these headers:
//
//	Content-Type: application/json
//	User-Agent: switchyard
//	X-Switchyard-Attempt: <n>
//
// plus the configured ones. X-Switchyard-Attempt is the delivery attempt of
// the event, from 1; for a batched request it is the highest attempt among
// the batch's events. A receiver can use it to tell first deliveries from
// repeats: delivery is at least once.
//
// Answers are classified as follows. 2xx: delivered. 408, 423, 429 and
// every 5xx but 501: retried, after the Retry-After header's delay when
// there is one. 501, every other 4xx and any 3xx: dead-lettered. Network
// errors and timeouts: retried.
package webhook

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/switchyard/switchyard/destinations"
)

const attemptHeader = "X-Switchyard-Attempt"

// Webhook delivers events to one URL. It is safe for concurrent use.
type Webhook struct {
	cfg    Config
	url    *url.URL
	client *http.Client
	log    *zap.Logger
	// now is the clock that HTTP-date Retry-After headers are read against.
	now func() time.Time
}

// New validates cfg and returns a webhook destination named name. A nil
// client is replaced by one that never follows redirects and keeps enough
// idle connections for MaxInFlight × Concurrency requests; either way each
// request is bounded by cfg.Timeout.
func New(name string, cfg Config, log *zap.Logger, client *http.Client) (*Webhook, error) {
	cfg, u, err := cfg.withDefaults(name)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = zap.NewNop()
	}
	if client == nil {
		client = defaultClient(cfg)
	}
	log = log.With(zap.String("destination", name))
	log.Info("webhook destination ready",
		zap.String("host", u.Host), // the path and query may hold a secret
		zap.Bool("batch", cfg.Batch),
		zap.Int("headers", len(cfg.Headers)))
	return &Webhook{cfg: cfg, url: u, client: client, log: log, now: time.Now}, nil
}

func defaultClient(cfg Config) *http.Client {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = cfg.MaxInFlight * cfg.Concurrency
	return &http.Client{
		Transport: transport,
		Timeout:   time.Duration(cfg.Timeout),
		// A POST redirected by 301, 302 or 303 turns into a GET, and a
		// redirect to another host would carry the configured headers
		// there: answer the 3xx instead.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Policy returns the batch policy of the config.
func (w *Webhook) Policy() destinations.Policy {
	return destinations.Policy{
		MaxItems:    w.cfg.MaxItems,
		MaxBytes:    w.cfg.MaxBytes,
		MaxWait:     time.Duration(w.cfg.MaxWait),
		MaxInFlight: w.cfg.MaxInFlight,
	}
}

// Send delivers the batch and returns one outcome per event, in order.
func (w *Webhook) Send(ctx context.Context, batch []destinations.Event) []destinations.Outcome {
	if w.cfg.Batch {
		return w.sendBatch(ctx, batch)
	}
	return w.sendEach(ctx, batch)
}

// sendBatch sends the whole batch as one JSON array; its answer is every
// event's outcome.
func (w *Webhook) sendBatch(ctx context.Context, batch []destinations.Event) []destinations.Outcome {
	out := make([]destinations.Outcome, len(batch))
	if len(batch) == 0 {
		return out
	}
	size := 1 + len(batch)
	attempt := 0
	for _, e := range batch {
		size += len(e.Raw())
		attempt = max(attempt, e.Attempt)
	}
	body := make([]byte, 0, size)
	body = append(body, '[')
	for i, e := range batch {
		if i > 0 {
			body = append(body, ',')
		}
		body = append(body, e.Raw()...)
	}
	body = append(body, ']')

	var o destinations.Outcome
	if ctx.Err() != nil {
		o = notSent(ctx)
	} else {
		o = w.post(ctx, body, attempt, len(batch))
	}
	for i := range out {
		out[i] = o
	}
	return out
}

// sendEach sends one request per event: the users of the batch in parallel,
// up to Concurrency at once, and the events of each user one after another.
func (w *Webhook) sendEach(ctx context.Context, batch []destinations.Event) []destinations.Outcome {
	out := make([]destinations.Outcome, len(batch))
	users := groupByKey(batch)
	work := make(chan []int)
	var wg sync.WaitGroup
	for range min(w.cfg.Concurrency, len(users)) {
		wg.Go(func() {
			for indexes := range work {
				w.sendUser(ctx, batch, indexes, out)
			}
		})
	}
	for _, indexes := range users {
		work <- indexes
	}
	close(work)
	wg.Wait()
	return out
}

// sendUser sends the events of one user at batch[indexes] in order and
// writes their outcomes to out. Once one gets Retry, the later ones are held
// back: sending them could let them take effect before the retried one.
func (w *Webhook) sendUser(ctx context.Context, batch []destinations.Event, indexes []int, out []destinations.Outcome) {
	var retried *destinations.Outcome
	for _, i := range indexes {
		switch {
		case retried != nil:
			out[i] = heldBack(*retried)
		case ctx.Err() != nil:
			out[i] = notSent(ctx)
		default:
			out[i] = w.post(ctx, batch[i].Raw(), batch[i].Attempt, 1)
		}
		if out[i].Result == destinations.Retry && retried == nil {
			retried = &out[i]
		}
	}
}

// groupByKey returns the batch's indexes grouped by ordering key, each group
// in batch order, the groups in the order of their first event. Events
// without a key share the empty key, so they too are sent in order.
func groupByKey(batch []destinations.Event) [][]int {
	var groups [][]int
	byKey := make(map[string]int)
	for i, e := range batch {
		key := e.Key()
		g, ok := byKey[key]
		if !ok {
			g = len(groups)
			byKey[key] = g
			groups = append(groups, nil)
		}
		groups[g] = append(groups[g], i)
	}
	return groups
}

// post sends one request and classifies its answer.
func (w *Webhook) post(ctx context.Context, body []byte, attempt, events int) destinations.Outcome {
	start := time.Now()
	reqCtx, cancel := context.WithTimeoutCause(ctx, time.Duration(w.cfg.Timeout), errTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(reqCtx, http.MethodPost, w.url.String(), bytes.NewReader(body))
	if err != nil {
		// The URL was validated in New, so this cannot happen with a
		// working net/http; dead-lettering would lose events, so retry.
		return destinations.RetryLater("request", "building webhook request: "+err.Error(), 0)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "switchyard")
	for name, value := range w.cfg.Headers {
		if http.CanonicalHeaderKey(name) == "Host" {
			req.Host = value
			continue
		}
		req.Header.Set(name, value)
	}
	req.Header.Set(attemptHeader, strconv.Itoa(attempt))

	resp, err := w.client.Do(req)
	var o destinations.Outcome
	if err != nil {
		o = w.failed(ctx, reqCtx, err)
	} else {
		o = w.classify(resp)
	}
	if ce := w.log.Check(zap.DebugLevel, "webhook request"); ce != nil {
		ce.Write(
			zap.Int("events", events),
			zap.Int("bytes", len(body)),
			zap.Int("attempt", attempt),
			zap.Int("status", o.Status),
			zap.Stringer("result", o.Result),
			zap.String("class", o.Class),
			zap.Duration("took", time.Since(start)))
	}
	return o
}

// errTimeout is the cause of a request context that ran out of Timeout.
var errTimeout = errors.New("webhook request timed out")

// failed classifies a request that got no answer: ctx is the caller's
// context and reqCtx the request's, bounded by the timeout.
func (w *Webhook) failed(ctx, reqCtx context.Context, err error) destinations.Outcome {
	if ctx.Err() != nil {
		return destinations.RetryLater("canceled", "sending interrupted: "+ctx.Err().Error(), 0)
	}
	// url.Error repeats the URL, whose path or query may hold a secret.
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var ne net.Error
	if errors.Is(context.Cause(reqCtx), errTimeout) || errors.As(err, &ne) && ne.Timeout() {
		return destinations.RetryLater("network", "webhook did not answer within "+w.cfg.Timeout.String(), 0)
	}
	return destinations.RetryLater("network", "sending to webhook: "+err.Error(), 0)
}

// notSent is the outcome of an event that was not sent because ctx ended.
func notSent(ctx context.Context) destinations.Outcome {
	return destinations.RetryLater("canceled", "not sent: "+ctx.Err().Error(), 0)
}

// heldBack is the outcome of an event held back behind an earlier event of
// its user that got the outcome retried. It may be retried no earlier.
func heldBack(retried destinations.Outcome) destinations.Outcome {
	return destinations.RetryLater("held_back", "held back: an earlier event of this user is being retried", retried.RetryAfter)
}

var _ destinations.Destination = (*Webhook)(nil)
