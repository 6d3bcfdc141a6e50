package ingest

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/gofiber/fiber/v2/middleware/cors"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/tidwall/gjson"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"

	"github.com/switchyard/switchyard/internal/dedupe"
	"github.com/switchyard/switchyard/queue"
	"github.com/switchyard/switchyard/schemas"
)

// openAPI is the OpenAPI 3.1 document of the routes the gateway serves,
// which it serves at /openapi.json.
//
//go:embed openapi.json
var openAPI []byte

// Gateway serves the Tracking API. Build it with New; mount it with App.
type Gateway struct {
	cfg       Config
	log       queue.Log
	logger    *zap.Logger
	validator *schemas.Validator
	keys      []writeKey
	dedupe    *dedupe.Set
	inFlight  chan struct{}
	deadlines publishDeadlines
	metrics   *metrics
	app       *fiber.App
	// allowed lists the methods of each path the app serves; see
	// allowedMethods.
	allowed map[string]string
}

type writeKey struct {
	hash   [sha256.Size]byte
	source string
	// switchyard is the _switchyard object of the source's messages.
	switchyard gjson.Result
}

// New validates cfg and builds a gateway that writes to log. Its metrics are
// registered on reg, which /metrics serves.
func New(cfg Config, log queue.Log, logger *zap.Logger, reg *prometheus.Registry) (*Gateway, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	v, err := schemas.NewValidator()
	if err != nil {
		return nil, fmt.Errorf("loading schemas: %w", err)
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("registering metrics: %w", err)
	}
	seen, err := dedupe.New(cfg.DedupeEntries, time.Duration(cfg.DedupeWindow))
	if err != nil {
		return nil, err
	}
	g := &Gateway{
		cfg:       cfg,
		log:       log,
		logger:    logger.With(zap.String("component", "gateway")),
		validator: v,
		dedupe:    seen,
		inFlight:  make(chan struct{}, cfg.MaxInFlight),
		deadlines: publishDeadlines{timeout: time.Duration(cfg.PublishTimeout)},
		metrics:   m,
	}
	for _, s := range cfg.Sources {
		for _, k := range s.WriteKeys {
			g.keys = append(g.keys, writeKey{hash: sha256.Sum256([]byte(k)), source: s.Name, switchyard: switchyardValue(s.Name)})
		}
	}
	g.app = g.newApp(reg)
	return g, nil
}

// App returns the Fiber app with every route mounted. Callers may add routes
// (metrics, health) before listening.
func (g *Gateway) App() *fiber.App { return g.app }

// route describes one Tracking API path.
type route struct {
	path string
	// typ is the call type a single-call route implies; "" for batch routes.
	typ string
}

var routes = []route{
	{"/v1/identify", "identify"}, {"/v1/track", "track"}, {"/v1/page", "page"},
	{"/v1/screen", "screen"}, {"/v1/group", "group"}, {"/v1/alias", "alias"},
	// analytics.js sends one call per request to the first letter of its type.
	{"/v1/i", "identify"}, {"/v1/t", "track"}, {"/v1/p", "page"},
	{"/v1/s", "screen"}, {"/v1/g", "group"}, {"/v1/a", "alias"},
	// Batches: the documented route, the Ruby and Java SDKs' import, and mobile.
	{"/v1/batch", ""}, {"/v1/import", ""}, {"/v1/b", ""},
}

func (g *Gateway) newApp(reg *prometheus.Registry) *fiber.App {
	app := fiber.New(fiber.Config{
		// readBody enforces the limit on the streamed body.
		BodyLimit:             g.rawBodyLimit(),
		StreamRequestBody:     true,
		DisableStartupMessage: true,
		ProxyHeader:           g.cfg.ProxyHeader,
		ErrorHandler:          g.errorHandler,
		ReadTimeout:           30 * time.Second,
		WriteTimeout:          writeTimeout,
		IdleTimeout:           120 * time.Second,
	})
	app.Server().HeaderReceived = g.headerReceived
	app.Use(g.readBody)
	app.Use(cors.New(cors.Config{
		// Pages and streams are for the gateway's own origin.
		Next:         func(c *fiber.Ctx) bool { return g.isPage(c.Path()) },
		AllowOrigins: strings.Join(g.cfg.CORSOrigins, ","),
		AllowMethods: "POST,OPTIONS",
		AllowHeaders: "Authorization,Content-Type,Content-Encoding,X-Retry-Count",
		MaxAge:       86400,
	}))
	for _, r := range routes {
		app.Post(r.path, g.handler(r))
	}
	app.Get("/metrics", adaptor.HTTPHandler(promhttp.HandlerFor(reg, promhttp.HandlerOpts{})))
	app.Get("/healthz", func(c *fiber.Ctx) error {
		return c.JSON(fiber.Map{"status": "ok"})
	})
	app.Get("/readyz", g.ready)
	app.Get("/openapi.json", func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
		return c.Send(openAPI)
	})
	// Stream routes first, as they are matched before a prefix route that
	// covers them.
	for _, r := range g.cfg.StreamRoutes {
		app.Get(r.Path, g.streamHandler(r))
	}
	for _, r := range g.cfg.Routes {
		h := adaptor.HTTPHandler(r.Handler)
		if r.Prefix {
			app.All(r.Path, h)
			app.All(r.Path+"/*", h)
			continue
		}
		app.Add(r.Method, r.Path, h)
	}
	g.allowed = allowedMethods(app.GetRoutes(true))
	app.Server().Handler = g.refuseUnknownMethods(app.Server().Handler)
	return app
}

// allowedMethods maps each route's path, as routePath writes it, to the
// methods it takes, as an Allow header lists them.
func allowedMethods(routes []fiber.Route) map[string]string {
	allowed := make(map[string]string)
	for _, r := range routes {
		p := routePath(r.Path)
		if allowed[p] != "" {
			allowed[p] += ", "
		}
		allowed[p] += r.Method
	}
	return allowed
}

// routePath is path as Fiber matches it by default: case-insensitive, a
// trailing slash ignored.
func routePath(path string) string {
	if len(path) > 1 {
		path = strings.TrimRight(path, "/")
	}
	return strings.ToLower(path)
}

// allowedAt returns the methods served at path, matching a route's
// parameter (:name) to any one segment.
func (g *Gateway) allowedAt(path string) (string, bool) {
	p := routePath(path)
	if allow, ok := g.allowed[p]; ok {
		return allow, true
	}
	segments := strings.Split(p, "/")
	for route, allow := range g.allowed {
		if !strings.Contains(route, ":") {
			continue
		}
		parts := strings.Split(route, "/")
		if len(parts) != len(segments) {
			continue
		}
		match := true
		for i, part := range parts {
			if part != segments[i] && !(strings.HasPrefix(part, ":") && segments[i] != "") {
				match = false
				break
			}
		}
		if match {
			return allow, true
		}
	}
	return "", false
}

// refuseUnknownMethods answers a request whose method Fiber does not know
// (QUERY, say) as the error handler answers a known method a route does not
// take: 405 with Allow on a path the gateway serves, 404 elsewhere, in the
// JSON error form. Fiber alone answers it 400 in plain text.
func (g *Gateway) refuseUnknownMethods(next fasthttp.RequestHandler) fasthttp.RequestHandler {
	return func(rctx *fasthttp.RequestCtx) {
		if slices.Contains(fiber.DefaultMethods, string(rctx.Method())) {
			next(rctx)
			return
		}
		c := g.app.AcquireCtx(rctx)
		defer g.app.ReleaseCtx(c)
		err := fiber.ErrNotFound
		if allow, ok := g.allowedAt(c.Path()); ok {
			c.Set(fiber.HeaderAllow, allow)
			err = fiber.ErrMethodNotAllowed
		}
		if g.errorHandler(c, err) != nil {
			c.Status(fiber.StatusInternalServerError)
		}
	}
}

// ready answers 200 while the log takes writes, 503 with the reason
// otherwise, adding Config.ReadyDetails to the body.
func (g *Gateway) ready(c *fiber.Ctx) error {
	ctx, cancel := context.WithTimeout(c.UserContext(), 5*time.Second)
	defer cancel()
	body := fiber.Map{}
	if g.cfg.ReadyDetails != nil {
		for k, v := range g.cfg.ReadyDetails() {
			body[k] = v
		}
	}
	if err := g.log.Check(ctx); err != nil {
		body["status"], body["reason"] = "unavailable", err.Error()
		return c.Status(fiber.StatusServiceUnavailable).JSON(body)
	}
	body["status"] = "ready"
	return c.JSON(body)
}

// errorHandler renders errors raised outside the handlers (an unknown route,
// a wrong method) in the gateway's JSON error form.
func (g *Gateway) errorHandler(c *fiber.Ctx, err error) error {
	var fe *fiber.Error
	if errors.As(err, &fe) {
		switch fe.Code {
		case fiber.StatusNotFound:
			return g.fail(c, fiber.StatusNotFound, "not_found", "no such route: "+c.Method()+" "+c.Path())
		case fiber.StatusMethodNotAllowed:
			return g.fail(c, fiber.StatusMethodNotAllowed, "method_not_allowed",
				c.Method()+" is not served at "+c.Path()+"; use "+string(c.Response().Header.Peek(fiber.HeaderAllow)))
		}
		return g.fail(c, fe.Code, "error", fe.Message)
	}
	g.logger.Error("serving request", zap.String("path", c.Path()), zap.Error(err))
	return g.fail(c, fiber.StatusInternalServerError, "internal", "internal error")
}

// fail writes {"success":false,"code":...,"message":...}; "error" repeats the
// message for clients that read that key.
func (g *Gateway) fail(c *fiber.Ctx, status int, code, message string) error {
	g.metrics.responses.WithLabelValues(strconv.Itoa(status)).Inc()
	return c.Status(status).JSON(fiber.Map{"success": false, "code": code, "message": message, "error": message})
}

var (
	okBody          = []byte(`{"success":true}`)
	jsonContentType = []byte(fiber.MIMEApplicationJSON)
)

// handler serves one Tracking API route: it reads and authenticates the
// request, then stores its messages and answers 200 once they are durable.
func (g *Gateway) handler(r route) fiber.Handler {
	return func(c *fiber.Ctx) error {
		scratch := takeScratch()
		defer releaseScratch(scratch)
		req, items, err := g.readRequest(c, r, scratch)
		if err != nil {
			return g.refuse(c, err)
		}
		if err := g.checkSizes(items); err != nil {
			return g.refuse(c, err)
		}
		req.out, req.arena, req.lists = scratch.out[:0], scratch.arena, &scratch.lists
		err = g.store(c, &req, items)
		scratch.out, scratch.arena = req.out, req.arena
		if cap(scratch.arena) > maxReusedArena {
			scratch.arena = nil
		}
		return err
	}
}

// refusal is a request the gateway answers with an error: status, code and
// message as fail writes them.
type refusal struct {
	status        int
	code, message string
}

func (e *refusal) Error() string { return e.message }

// refuse answers a refusal with fail; any other error goes to the error
// handler.
func (g *Gateway) refuse(c *fiber.Ctx, err error) error {
	var r *refusal
	if errors.As(err, &r) {
		return g.fail(c, r.status, r.code, r.message)
	}
	return err
}

// readRequest decodes the body of a request to route r and authenticates it.
// It returns the request and its messages: the one message on single-call
// routes, the batch array's on batch routes, whose envelope it reads into
// the request. The body is read once, into scratch. So that every reader
// reads what the gateway stores alike, bytes that are not UTF-8 become
// U+FFFD and a key repeated in an object keeps its last value.
func (g *Gateway) readRequest(c *fiber.Ctx, r route, scratch *fieldList) (request, []message, error) {
	receivedAt := g.cfg.Now().UTC()
	limit := g.cfg.MaxRequestBytes
	if r.typ != "" {
		limit = g.cfg.MaxMessageBytes
	}
	body, err := decodeBody(c.Request().Header.Peek(fiber.HeaderContentEncoding), c.Request().Body(), limit)
	if err != nil {
		var tooLarge *tooLargeError
		if errors.As(err, &tooLarge) {
			if r.typ != "" {
				return request{}, nil, &refusal{fiber.StatusBadRequest, "message_too_large", tooLarge.Error()}
			}
			return request{}, nil, &refusal{fiber.StatusBadRequest, "request_too_large", tooLarge.Error()}
		}
		return request{}, nil, &refusal{fiber.StatusBadRequest, "invalid_body", err.Error()}
	}
	// text is the body itself, not a copy: readBody's buffer holds it until
	// the handler returns and then takes the next request's. Nothing read
	// from it may outlive the request: prepare builds every message anew in
	// req.arena, and dead letters and errors are encoded anew.
	text := schemas.BytesString(validUTF8(body))
	sc := &scratch.body
	valid, repeated, tooDeep := scanBody(text, r.typ == "", sc)
	if tooDeep {
		return request{}, nil, &refusal{fiber.StatusBadRequest, "invalid_json",
			fmt.Sprintf("the request body nests objects and arrays deeper than %d levels", maxDepth)}
	}
	if !valid {
		return request{}, nil, &refusal{fiber.StatusBadRequest, "invalid_json", "the request body is not valid JSON"}
	}
	if !sc.rootObject {
		return request{}, nil, &refusal{fiber.StatusBadRequest, "invalid_json", "the request body must be a JSON object"}
	}
	if repeated {
		text = lastValues(gjson.Parse(text))
		scanBody(text, r.typ == "", sc)
	}
	var writeKeyField gjson.Result
	for _, f := range sc.root {
		if f.Key == "writeKey" {
			writeKeyField = f.Value
		}
	}
	key, ok := g.authenticate(c.Request().Header.Peek(fiber.HeaderAuthorization), writeKeyField)
	if !ok {
		return request{}, nil, &refusal{fiber.StatusUnauthorized, "unauthorized",
			"a valid write key is required: send it as the Basic auth username or as writeKey in the body"}
	}

	req := request{source: key.source, switchyardField: key.switchyard, receivedAt: receivedAt, ip: c.IP(), typ: r.typ}
	if r.typ != "" {
		sc.messages = append(sc.messages[:0], message{value: gjson.Result{Type: gjson.JSON, Raw: strings.TrimSpace(text)}, fields: sc.root})
		return req, sc.messages, nil
	}
	var batch gjson.Result
	for _, f := range sc.root {
		switch f.Key {
		case "batch":
			batch = f.Value
		case "context":
			req.context = f.Value
		case "integrations":
			req.integrations = f.Value
		case "sentAt":
			req.sentAt = f.Value
		}
	}
	if !batch.IsArray() {
		return request{}, nil, &refusal{fiber.StatusBadRequest, "invalid_batch", "the body must have a batch array"}
	}
	return req, sc.messages, nil
}

// checkSizes refuses a batch with too many messages or any message over the
// per-message limit.
func (g *Gateway) checkSizes(items []message) error {
	if len(items) > g.cfg.MaxBatchMessages {
		return &refusal{fiber.StatusBadRequest, "batch_too_large",
			fmt.Sprintf("the batch has %d messages; the limit is %d per batch", len(items), g.cfg.MaxBatchMessages)}
	}
	for i, item := range items {
		if len(item.value.Raw) > g.cfg.MaxMessageBytes {
			return &refusal{fiber.StatusBadRequest, "message_too_large",
				fmt.Sprintf("message %d is %d bytes; the limit is %d bytes per message", i, len(item.value.Raw), g.cfg.MaxMessageBytes)}
		}
	}
	return nil
}

// store publishes the request's valid messages not seen before, together
// with dead letters for its invalid ones, and answers 200 once they are
// durable.
func (g *Gateway) store(c *fiber.Ctx, req *request, items []message) error {
	out, valid, err := g.prepareAll(items, req)
	if err != nil {
		return g.refuse(c, err)
	}
	invalid := len(out)
	lists := req.lists
	keys := lists.keys[:0]
	for _, msg := range valid {
		keys = append(keys, dedupe.KeyOf(req.source, msg.messageID))
	}
	accepted := lists.accepted[:0] // dedupe keys of the messages being stored
	var duplicates int
	inRequest := lists.inRequest
	if inRequest == nil {
		inRequest = make(map[dedupe.Key]bool, len(keys))
	}
	headers := slices.Grow(lists.headers[:0], len(valid))[:len(valid)]
	for i, seen := range g.dedupe.Seen(keys, req.receivedAt) {
		if seen || inRequest[keys[i]] {
			duplicates++
			continue
		}
		inRequest[keys[i]] = true
		accepted = append(accepted, keys[i])
		headers[i] = queue.Header{Key: schemas.EventHeaderKey, Value: valid[i].header}
		out = append(out, queue.Message{Topic: g.cfg.EventsTopic, Key: valid[i].key, Value: valid[i].value, Headers: headers[i : i+1 : i+1]})
	}

	if len(out) > 0 {
		if err := g.publish(c, req.source, out); err != nil {
			// The log may still be writing from them.
			req.arena, *lists = nil, storeLists{}
			return g.refuse(c, err)
		}
	}
	*lists = storeLists{msgs: out, valid: valid, keys: keys, accepted: accepted, headers: headers, inRequest: inRequest}
	g.dedupe.Add(accepted, req.receivedAt)
	g.metrics.accepted.Add(float64(len(accepted)))
	g.metrics.invalid.Add(float64(invalid))
	g.metrics.duplicate.Add(float64(duplicates))
	g.metrics.ok.Inc()
	c.Response().Header.SetContentTypeBytes(jsonContentType)
	return c.Status(fiber.StatusOK).Send(okBody)
}

// arenaPerMessage is what the gateway adds to a typical message (receivedAt,
// timestamps, _switchyard, an ip) and its key, for sizing a request's arena.
const arenaPerMessage = 256

// prepareAll prepares every message. It returns the dead letters of the
// invalid ones, with room to append the valid ones, and the valid ones. On a
// single-call route an invalid message is refused instead.
func (g *Gateway) prepareAll(items []message, req *request) (deadLetters []queue.Message, valid []prepared, err error) {
	deadLetters = slices.Grow(req.lists.msgs[:0], len(items))
	valid = slices.Grow(req.lists.valid[:0], len(items))
	size := 0
	for _, item := range items {
		size += len(item.value.Raw) + arenaPerMessage
	}
	if cap(req.arena) < size {
		req.arena = make([]byte, 0, size)
	}
	req.arena = req.arena[:0]
	for i, item := range items {
		msg, err := g.prepare(item.value, item.fields, req)
		if err == nil {
			valid = append(valid, msg)
			continue
		}
		if req.typ != "" {
			g.metrics.invalid.Inc()
			return nil, nil, &refusal{fiber.StatusBadRequest, "invalid_message", err.Error()}
		}
		dl, err := g.deadLetter(item.value, req, fmt.Sprintf("message %d of the batch: %v", i, err))
		if err != nil {
			return nil, nil, err
		}
		deadLetters = append(deadLetters, dl)
	}
	return deadLetters, valid, nil
}

// publish writes msgs to the log within the publish timeout. It refuses with
// 429 when MaxInFlight publishes are already running and with 503 when the
// log fails (code log_full when its storage is full); both set Retry-After.
func (g *Gateway) publish(c *fiber.Ctx, source string, msgs []queue.Message) error {
	select {
	case g.inFlight <- struct{}{}:
	default:
		c.Set(fiber.HeaderRetryAfter, "1")
		c.Set("X-RateLimit-Reset", "1")
		return &refusal{fiber.StatusTooManyRequests, "overloaded", "the gateway is busy; retry after 1 second"}
	}
	start := time.Now()
	err := g.log.Publish(g.deadlines.context(start), msgs...)
	<-g.inFlight
	g.metrics.publishSeconds.Observe(time.Since(start).Seconds())
	if err != nil {
		g.logger.Warn("writing to the log", zap.String("source", source), zap.Int("messages", len(msgs)), zap.Error(err))
		c.Set(fiber.HeaderRetryAfter, "5")
		if errors.Is(err, queue.ErrFull) {
			return &refusal{fiber.StatusServiceUnavailable, "log_full", "the log's disk is full, nothing was stored; retry later"}
		}
		return &refusal{fiber.StatusServiceUnavailable, "unavailable", "the log cannot take writes now; retry later"}
	}
	return nil
}

// publishDeadlines hands out the contexts publishes run under, so that a
// publish does not start a timer of its own: the publishes begun within
// one deadlineStep share a context, which ends PublishTimeout after the
// step ends. Each publish so gets at least PublishTimeout, and at most
// deadlineStep more.
type publishDeadlines struct {
	timeout time.Duration
	mu      sync.Mutex
	current context.Context
	// cancel is current's; the context ends at its deadline, as publishes
	// begun in its step may still be running until then.
	cancel context.CancelFunc
	// until is when the step of current ends.
	until time.Time
}

// deadlineStep is how long publishes begin under one context.
const deadlineStep = 10 * time.Millisecond

// context returns the context of a publish begun at now.
func (d *publishDeadlines) context(now time.Time) context.Context {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.current == nil || !now.Before(d.until) {
		d.until = now.Add(deadlineStep)
		d.current, d.cancel = context.WithDeadline(context.Background(), d.until.Add(d.timeout))
	}
	return d.current
}

// authenticate finds the request's write key: the Basic auth username (with
// or without the trailing colon), else wk, the body's writeKey. Every
// configured key is compared, in constant time, so timing tells nothing.
func (g *Gateway) authenticate(authorization []byte, wk gjson.Result) (writeKey, bool) {
	key, ok := basicUser(string(authorization))
	if !ok {
		if wk.Type != gjson.String || wk.Str == "" {
			return writeKey{}, false
		}
		key = wk.Str
	}
	sum := sha256.Sum256([]byte(key))
	var found writeKey
	for _, k := range g.keys {
		if subtle.ConstantTimeCompare(sum[:], k.hash[:]) == 1 {
			found = k
		}
	}
	return found, found.source != ""
}

// deadLetter wraps a refused batch message, less its writeKey, for the
// dead-letter topic.
func (g *Gateway) deadLetter(item gjson.Result, req *request, reason string) (queue.Message, error) {
	value, err := json.Marshal(queue.DeadLetter{
		Reason:   reason,
		Stage:    "gateway",
		Source:   req.source,
		FailedAt: req.receivedAt,
		Message:  withoutWriteKey(item),
	})
	if err != nil {
		return queue.Message{}, fmt.Errorf("encoding dead letter: %w", err)
	}
	key := schemas.NewEvent([]byte(item.Raw)).Key()
	return queue.Message{Topic: g.cfg.DLQTopic, Key: []byte(key), Value: value}, nil
}
