// Command barehandler is the ceiling BenchmarkIngest measures the gateway
// against: a Fiber server that answers every POST with the gateway's 200
// body once it has checked that the body is JSON, and does nothing else (no
// authentication, enrichment, validation, dedupe or storage).
package main

import (
	"flag"
	"log"

	"github.com/gofiber/fiber/v2"
	"github.com/tidwall/gjson"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen `address`")
	flag.Parse()
	app := fiber.New(fiber.Config{DisableStartupMessage: true, BodyLimit: 32 << 20})
	ok := []byte(`{"success":true}`)
	app.Get("/healthz", func(c *fiber.Ctx) error { return c.SendString("ok") })
	app.Post("/*", func(c *fiber.Ctx) error {
		if !gjson.ValidBytes(c.Body()) {
			return c.Status(fiber.StatusBadRequest).SendString(`{"success":false}`)
		}
		c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
		return c.Send(ok)
	})
	log.Fatal(app.Listen(*addr))
}
