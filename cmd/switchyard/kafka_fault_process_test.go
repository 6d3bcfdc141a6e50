package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/switchyard/switchyard/destinations/webhook/webhooktest"
)

// privateBroker is a single-node Kafka broker of one test's own, run by
// scripts/kafka.sh on a data dir and ports no other broker uses, so the
// test may stop and restart it.
type privateBroker struct {
	addr string
	env  []string
}

// startPrivateBroker starts a broker on fresh data in /tmp/sy-kafkafault-*
// on the first free pair of ports from 39092. It fails the test, never
// skips it, when the broker cannot start. The broker is stopped and its data
// removed when the test ends.
func startPrivateBroker(t *testing.T) *privateBroker {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "sy-kafkafault-")
	if err != nil {
		t.Fatal(err)
	}
	port := freePortPair(t, 39092)
	b := &privateBroker{env: append(os.Environ(),
		"KAFKA_DATA="+dir,
		"KAFKA_PORT="+strconv.Itoa(port),
		"KAFKA_CONTROLLER_PORT="+strconv.Itoa(port+1),
		"KAFKA_HEAP_OPTS=-Xms128m -Xmx512m",
	)}
	t.Cleanup(func() {
		if err := b.script("stop"); err != nil {
			t.Errorf("stopping the broker: %v", err)
		}
		os.RemoveAll(dir)
	})
	if err := b.script("start"); err != nil {
		t.Fatalf("starting a broker with scripts/kafka.sh: %v", err)
	}
	return b
}

// freePortPair returns the first even port from low on 127.0.0.1 that,
// with the one after it, nobody listens on.
func freePortPair(t *testing.T, low int) int {
	t.Helper()
	for p := low; p < low+200; p += 2 {
		a, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			continue
		}
		b, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p+1))
		a.Close()
		if err != nil {
			continue
		}
		b.Close()
		return p
	}
	t.Fatalf("no free pair of ports in %d-%d", low, low+200)
	return 0
}

// script runs scripts/kafka.sh with args and, for start, records the
// address it prints. extraEnv is added to the broker's environment.
func (b *privateBroker) script(args string, extraEnv ...string) error {
	path, err := filepath.Abs("../../scripts/kafka.sh")
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args)
	cmd.Env = append(append([]string(nil), b.env...), extraEnv...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("kafka.sh %s: %w\n%s", args, err, stderr.String())
	}
	if args == "start" {
		lines := strings.Fields(stdout.String())
		if len(lines) == 0 {
			return fmt.Errorf("kafka.sh start printed no address\n%s", stderr.String())
		}
		b.addr = lines[len(lines)-1]
	}
	return nil
}

// answer is what the gateway answered one batch of the load.
type answer struct {
	ids         []string
	sent, got   time.Time
	status      int
	body        []byte
	err         error
	retryAfter  string
	contentType string
}

// TestGatewayAndRouterRideOutAKafkaRestart posts about 250 events/s
// through switchyard gateway into a broker of the test's own: 15s of load,
// the broker stopped for 15s and started again on its data, then 10s more
// once it takes writes again (about a minute in all). The gateway
// never answers 200 while the broker is down, and answers what it cannot
// append with a JSON 503 (or 429 when too many requests wait); every event
// it acknowledged reaches the webhook; the router, never restarted, brings
// the group's lag back to 0.
func TestGatewayAndRouterRideOutAKafkaRestart(t *testing.T) {
	const (
		outageAt  = 15 * time.Second
		outage    = 15 * time.Second
		afterUp   = 10 * time.Second
		perBatch  = 10
		perSecond = 25 // batches
	)
	broker := startPrivateBroker(t)
	receiver := webhooktest.NewServer(t)
	cfgPath := routerConfigFile(t, receiver.URL, "")
	gw := start(t, freeAddr(t), "gateway", "--config", cfgPath, "--kafka-brokers", broker.addr)
	router := start(t, freeAddr(t), "router", "--config", cfgPath, "--kafka-brokers", broker.addr)

	client := &http.Client{Timeout: 30 * time.Second}
	var mu sync.Mutex
	var answers []answer
	var posting sync.WaitGroup
	slots := make(chan struct{}, 64)
	stopLoad := make(chan struct{})
	tick := time.NewTicker(time.Second / perSecond)
	loadDone := make(chan struct{})
	go func() {
		defer close(loadDone)
		defer tick.Stop()
		for n := 0; ; n++ {
			select {
			case <-stopLoad:
				posting.Wait()
				return
			case <-tick.C:
			}
			ids := make([]string, perBatch)
			for i := range ids {
				ids[i] = fmt.Sprintf("kf-%d-%d", n, i)
			}
			slots <- struct{}{}
			posting.Add(1)
			go func() {
				defer posting.Done()
				defer func() { <-slots }()
				a := answer{ids: ids, sent: time.Now()}
				resp, err := client.Do(batchRequest(gw.addr, "k", ids))
				if err == nil {
					a.status = resp.StatusCode
					a.retryAfter = resp.Header.Get("Retry-After")
					a.contentType = resp.Header.Get("Content-Type")
					a.body, a.err = io.ReadAll(resp.Body)
					resp.Body.Close()
				} else {
					a.err = err
				}
				a.got = time.Now()
				mu.Lock()
				answers = append(answers, a)
				mu.Unlock()
			}()
		}
	}()

	time.Sleep(outageAt)
	stopBegun := time.Now()
	if err := broker.script("stop"); err != nil {
		t.Fatal(err)
	}
	down := time.Now()
	time.Sleep(outage)
	startBegun := time.Now()
	if err := broker.script("start", "KAFKA_KEEP_DATA=1"); err != nil {
		t.Fatal(err)
	}
	up := time.Now()
	time.Sleep(afterUp)
	close(stopLoad)
	<-loadDone
	loadBegan := stopBegun.Add(-outageAt)

	// refusedWhileDown are the events refused, sent and answered, while no
	// broker ran: if they reach the receiver, the log appended them after
	// the gateway had said it could not.
	var acked, refused, refusedWhileDown []string
	var oks, oksAfterUp, unavailable, overloaded int
	for _, a := range answers {
		switch {
		case a.err != nil:
			t.Errorf("a batch sent %v after the load began got no answer: %v", a.sent.Sub(loadBegan).Round(time.Millisecond), a.err)
		case a.status == 200:
			oks++
			acked = append(acked, a.ids...)
			if a.sent.After(up) {
				oksAfterUp++
			}
			if a.sent.After(down) && a.got.Before(startBegun) {
				t.Errorf("200 for a batch sent %v after the broker stopped and answered %v before it started again",
					a.sent.Sub(down).Round(time.Millisecond), startBegun.Sub(a.got).Round(time.Millisecond))
			}
		case a.status == 503 || a.status == 429:
			if a.status == 503 {
				unavailable++
			} else {
				overloaded++
			}
			if !strings.HasPrefix(a.contentType, "application/json") || gjson.GetBytes(a.body, "success").Type != gjson.False ||
				gjson.GetBytes(a.body, "message").String() == "" || a.retryAfter == "" {
				t.Errorf("%d without a JSON error and Retry-After: %s %q, Retry-After %q", a.status, a.contentType, a.body, a.retryAfter)
			}
			refused = append(refused, a.ids...)
			if a.sent.After(down) && a.got.Before(startBegun) {
				refusedWhileDown = append(refusedWhileDown, a.ids...)
			}
		default:
			t.Errorf("batch answered %d: %s", a.status, a.body)
		}
	}
	t.Logf("injected: broker stopped %v after the load began (stop took %v), down %v, restart took %v (no writes for %v); %d batches of %d events posted over %v: %d answered 200 (%d sent after the restart), %d 503, %d 429",
		outageAt, down.Sub(stopBegun).Round(time.Millisecond), startBegun.Sub(down).Round(time.Millisecond),
		up.Sub(startBegun).Round(time.Millisecond), up.Sub(stopBegun).Round(time.Millisecond),
		len(answers), perBatch, time.Since(loadBegan).Round(time.Second), oks, oksAfterUp, unavailable, overloaded)
	if unavailable+overloaded == 0 {
		t.Errorf("no batch was refused during a %v outage: the load did not reach the gateway while the broker was down", up.Sub(stopBegun).Round(time.Second))
	}
	if oksAfterUp == 0 {
		t.Errorf("no batch sent in the %v after the restart was acknowledged: the gateway did not recover", afterUp)
	}

	waitDelivered(t, receiver, acked, 60*time.Second)
	waitLagZero(t, router.addr, 60*time.Second)
	delivered := func(ids []string) int {
		n := 0
		for _, id := range ids {
			if receiver.Delivered(id) > 0 {
				n++
			}
		}
		return n
	}
	lag, _ := scrapeCounter(router.addr, `switchyard_router_consumer_lag{destination="hook"}`)
	t.Logf("counted: %d acknowledged events all delivered, %d distinct events delivered, %d deliveries beyond the first, lag %v; of %d events refused, %d were delivered anyway, %d of them refused while no broker ran",
		len(acked), deliveredCount(receiver), extraDeliveries(receiver), lag, len(refused), delivered(refused), delivered(refusedWhileDown))
	for name, s := range map[string]*server{"gateway": gw, "router": router} {
		select {
		case err := <-s.done:
			t.Fatalf("the %s exited: %v\n%s", name, err, s.logs())
		default:
		}
	}
	if logs := router.logs(); strings.Contains(logs, "router stopped") {
		t.Errorf("the router stopped and was started again instead of riding out the outage:\n%s", logs)
	}
	router.stop(t, syscall.SIGTERM)
	gw.stop(t, syscall.SIGTERM)
}
