package ingest

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"
)

// What the gateway reads and throws away of an over-limit body after
// answering it, at most, before it closes the connection.
const (
	maxDiscardBytes = 16 << 20
	discardTimeout  = 5 * time.Second
)

// rawBodyLimit caps a request body as it arrives. The body may be
// compressed; the exact decompressed limits are checked by the handlers.
// This only stops bodies no limit could pass.
func (g *Gateway) rawBodyLimit() int { return g.cfg.MaxRequestBytes + 64<<10 }

// bodyBuffer holds one request's body while it is served.
type bodyBuffer struct {
	buf    bytes.Buffer
	reader io.LimitedReader
}

var bodyBuffers = sync.Pool{New: func() any { return new(bodyBuffer) }}

// oversizedHeader marks a request whose Content-Length is over
// rawBodyLimit. headerReceived sets it, and sets the Content-Length to 0 so
// that fasthttp reads none of the body and readBody answers at once, whether
// the client sends its body first or waits for the answer.
const oversizedHeader = "X-Switchyard-Oversized"

// headerReceived runs on each request's header, before fasthttp reads the
// body.
func (g *Gateway) headerReceived(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
	h.Del(oversizedHeader)
	if h.ContentLength() > g.rawBodyLimit() {
		h.Set(oversizedHeader, "true")
		h.Del(fiber.HeaderExpect) // the answer is final: no 100 Continue
		h.SetContentLength(0)
	}
	return fasthttp.RequestConfig{}
}

// readBody runs first on every request. fasthttp hands it the body as a
// stream (StreamRequestBody), so that a body over the limit reaches the
// gateway instead of fasthttp closing the connection under a client that is
// still sending. readBody reads a body within rawBodyLimit for the handlers
// and answers one over it itself.
func (g *Gateway) readBody(c *fiber.Ctx) error {
	req := c.Request()
	if len(req.Header.Peek(oversizedHeader)) > 0 {
		return g.refuseOversized(c)
	}
	stream := req.BodyStream()
	if stream == nil {
		return c.Next()
	}
	limit := g.rawBodyLimit()
	length := req.Header.ContentLength() // -1 when chunked
	b := bodyBuffers.Get().(*bodyBuffer)
	defer func() {
		b.buf.Reset()
		bodyBuffers.Put(b)
	}()
	if length > 0 {
		b.buf.Grow(length + bytes.MinRead)
	}
	b.reader = io.LimitedReader{R: stream, N: int64(limit) + 1}
	_, err := b.buf.ReadFrom(&b.reader)
	b.reader.R = nil
	switch {
	case err != nil:
		c.Context().SetConnectionClose()
		return g.fail(c, fiber.StatusBadRequest, "invalid_body", "reading the request body: "+err.Error())
	case b.buf.Len() > limit:
		return g.refuseOversized(c)
	}
	req.SetBodyRaw(b.buf.Bytes())
	return c.Next()
}

// refuseOversized answers a body over the limit with the 400 that names the
// limit, then reads and discards what the client still sends, up to
// maxDiscardBytes and for discardTimeout, before it closes the connection.
// A client that sends its whole body before it reads the answer, as Python's
// urllib and most SDKs do, would otherwise get a connection reset instead of
// the 400 and retry a request that can never succeed.
func (g *Gateway) refuseOversized(c *fiber.Ctx) error {
	err := g.fail(c, fiber.StatusBadRequest, "request_too_large",
		fmt.Sprintf("the request body is over the limit of %d bytes", g.cfg.MaxRequestBytes))
	fctx := c.Context()
	fctx.Response.SetConnectionClose()
	// fasthttp does not hijack a connection whose response closes it, so the
	// hijacking handler writes the response itself.
	fctx.HijackSetNoResponse(true)
	fctx.Hijack(func(conn net.Conn) {
		w := bufio.NewWriter(conn)
		if fctx.Response.Write(w) != nil || w.Flush() != nil {
			return
		}
		conn.SetReadDeadline(time.Now().Add(discardTimeout))
		io.CopyN(io.Discard, conn, maxDiscardBytes)
	})
	return err
}
