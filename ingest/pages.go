package ingest

import (
	"bufio"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
)

// writeTimeout is the server's write timeout: it bounds the writing of a
// response, and each write of a stream.
const writeTimeout = 30 * time.Second

// isPage reports whether path is served by a prefix route or a stream route,
// which get no CORS headers.
func (g *Gateway) isPage(path string) bool {
	p := routePath(path)
	for _, r := range g.cfg.StreamRoutes {
		if p == routePath(r.Path) {
			return true
		}
	}
	for _, r := range g.cfg.Routes {
		if r.Prefix {
			tree := routePath(r.Path)
			if p == tree || strings.HasPrefix(p, tree+"/") {
				return true
			}
		}
	}
	return false
}

// streamHandler serves a stream route. Fiber's Ctx is released once the
// handler returns, before the body stream writer runs, so the handler
// converts the request and opens the stream first; the writer uses only
// what Open returned and the connection.
func (g *Gateway) streamHandler(route StreamRoute) fiber.Handler {
	return func(c *fiber.Ctx) error {
		r, err := adaptor.ConvertRequest(c, true)
		if err != nil {
			return err
		}
		stream, status, err := route.Open(r)
		if err != nil {
			if status < 400 || status > 599 {
				status = http.StatusInternalServerError
			}
			c.Set(fiber.HeaderContentType, fiber.MIMETextPlainCharsetUTF8)
			c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
			return c.Status(status).SendString(err.Error() + "\n")
		}
		for k, v := range stream.Headers {
			c.Set(k, v)
		}
		dw := &deadlineWriter{conn: c.Context().Conn(), timeout: g.app.Server().WriteTimeout}
		c.Status(http.StatusOK).Context().SetBodyStreamWriter(func(w *bufio.Writer) {
			dw.w = w
			stream.Run(bufio.NewWriter(dw))
		})
		return nil
	}
}

// deadlineWriter passes each write of a stream on to fasthttp's body writer
// at once, first giving the connection the write timeout from now. fasthttp
// sets the write deadline once, before it writes the response, which would
// otherwise cut a stream the write timeout after it began.
type deadlineWriter struct {
	w       *bufio.Writer
	conn    net.Conn
	timeout time.Duration // 0: none
}

func (d *deadlineWriter) Write(p []byte) (int, error) {
	var deadline time.Time
	if d.timeout > 0 {
		deadline = time.Now().Add(d.timeout)
	}
	if err := d.conn.SetWriteDeadline(deadline); err != nil {
		return 0, err
	}
	n, err := d.w.Write(p)
	if err != nil {
		return n, err
	}
	return n, d.w.Flush()
}
