package ui

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// viewerBuffer is how many updates a viewer's stream may fall behind before
// the producer drops updates for it (and the page says how many).
const viewerBuffer = 16

// hub fans the sampler's updates out to the open streams without ever
// waiting for one.
type hub struct {
	mu      sync.Mutex
	viewers map[*viewer]struct{}
}

type viewer struct {
	ch      chan []byte
	dropped atomic.Int64
}

func newHub() *hub { return &hub{viewers: map[*viewer]struct{}{}} }

func (h *hub) subscribe() *viewer {
	v := &viewer{ch: make(chan []byte, viewerBuffer)}
	h.mu.Lock()
	h.viewers[v] = struct{}{}
	h.mu.Unlock()
	return v
}

func (h *hub) unsubscribe(v *viewer) {
	h.mu.Lock()
	delete(h.viewers, v)
	h.mu.Unlock()
}

// publish offers msg to every viewer; a viewer whose buffer is full misses
// it and counts the miss.
func (h *hub) publish(msg []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for v := range h.viewers {
		select {
		case v.ch <- msg:
		default:
			v.dropped.Add(1)
		}
	}
}

func (h *hub) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.viewers)
}

// sseEvent encodes one server-sent event; an empty name is the default
// "message" event, which htmx swaps into the page.
func sseEvent(buf *bytes.Buffer, name string, id uint64, data string) {
	if name != "" {
		fmt.Fprintf(buf, "event: %s\n", name)
	}
	if id > 0 {
		fmt.Fprintf(buf, "id: %d\n", id)
	}
	for line := range strings.SplitSeq(data, "\n") {
		buf.WriteString("data: ")
		buf.WriteString(strings.TrimSuffix(line, "\r"))
		buf.WriteByte('\n')
	}
	buf.WriteByte('\n')
}

// Stream is one viewer's /ui/stream, authorized and ready to run. It is
// separate from net/http so that a server that cannot stream through an
// http.ResponseWriter (Fiber, through a body stream writer) can run it.
type Stream struct {
	h     *Handler
	after uint64
	live  *liveFilter // the live events panel's stream: the tap, not the overview
}

// OpenStream authorizes r for the stream. It reads everything it needs from
// r now, so r may be gone when Run is called. On refusal it returns the
// HTTP status to answer (401, or 403 for a non-loopback client when no
// admin token is configured) and the reason.
func (h *Handler) OpenStream(r *http.Request) (*Stream, int, error) {
	if _, err := h.auth.authenticate(r); err != nil {
		return nil, statusFor(err), err
	}
	s := &Stream{h: h}
	if q := r.URL.Query(); q.Has("live") {
		if h.cfg.Live.Log == nil {
			return nil, http.StatusNotFound, errors.New("this process reads no log, so it has no live events")
		}
		f := parseLiveFilter(q)
		s.live = &f
	}
	for _, v := range []string{r.Header.Get("Last-Event-ID"), r.URL.Query().Get("after")} {
		if n, err := strconv.ParseUint(v, 10, 64); err == nil && n > s.after {
			s.after = n
		}
	}
	return s, http.StatusOK, nil
}

// StreamHeaders are the response headers of the stream.
var StreamHeaders = map[string]string{
	"Content-Type":      "text/event-stream",
	"Cache-Control":     "no-store",
	"X-Accel-Buffering": "no",
}

// Run writes the stream to w, calling flush after every event, until ctx
// ends, the page's Context ends, or a write or flush fails (a client that
// went away is noticed at the latest by the next heartbeat). It first sends
// the current overview and the chart points after the last one the viewer
// has, then every update as the sampler makes it.
func (s *Stream) Run(ctx context.Context, w io.Writer, flush func() error) error {
	h := s.h
	send := func(b []byte) error {
		if _, err := w.Write(b); err != nil {
			return err
		}
		return flush()
	}
	if s.live != nil {
		tv, err := h.tap.subscribe(*s.live)
		if err != nil {
			return err
		}
		defer h.tap.unsubscribe(tv)
		if err := send([]byte("retry: 2000\n\n: tap\n\n")); err != nil {
			return err
		}
		return h.runTap(ctx, tv, send)
	}
	v := h.hub.subscribe()
	defer h.hub.unsubscribe(v)

	var buf bytes.Buffer
	buf.WriteString("retry: 2000\n\n")
	if first := h.catchUp(s.after); len(first) > 0 {
		buf.Write(first)
	}
	if err := send(buf.Bytes()); err != nil {
		return err
	}
	heartbeat := time.NewTicker(h.cfg.Heartbeat)
	defer heartbeat.Stop()
	var dropped int64
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-h.cfg.Context.Done():
			return nil
		case <-heartbeat.C:
			if err := send([]byte(": ping\n\n")); err != nil {
				return err
			}
		case msg := <-v.ch:
			buf.Reset()
			if n := v.dropped.Swap(0); n > 0 {
				dropped += n
				sseEvent(&buf, "dropped", 0, fmt.Sprintf(`{"dropped":%d}`, dropped))
			}
			buf.Write(msg)
			if err := send(buf.Bytes()); err != nil {
				return err
			}
		}
	}
}

func (h *Handler) serveStream(w http.ResponseWriter, r *http.Request) {
	s, status, err := h.OpenStream(r)
	if err != nil {
		http.Error(w, err.Error(), status)
		return
	}
	rc := http.NewResponseController(w)
	// A server WriteTimeout would cut the stream; this response has none.
	if err := rc.SetWriteDeadline(time.Time{}); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return
	}
	for k, v := range StreamHeaders {
		w.Header().Set(k, v)
	}
	w.WriteHeader(http.StatusOK)
	s.Run(r.Context(), w, rc.Flush)
}

func statusFor(err error) int {
	if errors.Is(err, errNotLoopback) {
		return http.StatusForbidden
	}
	return http.StatusUnauthorized
}
