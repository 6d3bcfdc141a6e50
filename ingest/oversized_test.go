package ingest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"
)

// oversizedBatch is a valid batch of about 752 KB, over the 500 KB limit.
func oversizedBatch() []byte {
	item := `{"type":"track","userId":"u","event":"E","properties":{"pad":"` + strings.Repeat("p", 1000) + `"}}`
	items := make([]string, 0, 740)
	for range 740 {
		items = append(items, item)
	}
	return []byte(`{"batch":[` + strings.Join(items, ",") + `]}`)
}

// wantTooLarge checks an answer is the 400 that names the limit.
func wantTooLarge(t *testing.T, try int, status int, body []byte) {
	t.Helper()
	if status != 400 || gjson.GetBytes(body, "code").String() != "request_too_large" || !strings.Contains(string(body), "512000") {
		t.Fatalf("try %d: status %d body %q, want 400 request_too_large naming 512000", try, status, body)
	}
}

// TestOversizedBodiesGetTheirAnswer sends bodies over the limit as SDK HTTP
// clients do, the whole body before reading the answer, and checks each gets
// the 400 rather than a connection reset, 20 times in a row.
func TestOversizedBodiesGetTheirAnswer(t *testing.T) {
	f := newFixture(t, Config{})
	addr := listen(t, f)
	body := oversizedBatch()
	auth := basic(testKey + ":")

	rawPost := func(t *testing.T, head string, payload []byte) {
		for try := range 20 {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := conn.Write(append([]byte(head), payload...)); err != nil {
				t.Fatalf("try %d: writing the request: %v", try, err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatalf("try %d: reading the answer: %v", try, err)
			}
			raw, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatalf("try %d: reading the answer's body: %v", try, err)
			}
			resp.Body.Close()
			conn.Close()
			wantTooLarge(t, try, resp.StatusCode, raw)
		}
	}
	t.Run("a plain connection with a Content-Length", func(t *testing.T) {
		rawPost(t, fmt.Sprintf("POST /v1/batch HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", auth, len(body)), body)
	})
	t.Run("a plain connection sending chunks", func(t *testing.T) {
		var chunked bytes.Buffer
		for rest := body; len(rest) > 0; {
			n := min(len(rest), 16<<10)
			fmt.Fprintf(&chunked, "%x\r\n%s\r\n", n, rest[:n])
			rest = rest[n:]
		}
		chunked.WriteString("0\r\n\r\n")
		rawPost(t, "POST /v1/batch HTTP/1.1\r\nHost: x\r\nAuthorization: "+auth+"\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n", chunked.Bytes())
	})
	t.Run("Go's net/http client", func(t *testing.T) {
		for try := range 20 {
			req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/batch", bytes.NewReader(body))
			req.Header.Set("Authorization", auth)
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("try %d: %v", try, err)
			}
			raw, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatalf("try %d: reading the answer: %v", try, err)
			}
			wantTooLarge(t, try, resp.StatusCode, raw)
		}
	})
	t.Run("Python's urllib", func(t *testing.T) {
		python, err := exec.LookPath("python3")
		if err != nil {
			if os.Getenv("CI") != "" {
				t.Fatal("python3 is missing; CI must have it")
			}
			t.Skip("python3 is missing")
		}
		path := filepath.Join(t.TempDir(), "batch.json")
		if err := os.WriteFile(path, body, 0o600); err != nil {
			t.Fatal(err)
		}
		const script = `
import sys, urllib.request, urllib.error
url, auth, path = sys.argv[1:]
body = open(path, "rb").read()
for _ in range(20):
    req = urllib.request.Request(url, data=body, headers={"Authorization": auth, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            print(resp.status, resp.read().decode())
    except urllib.error.HTTPError as e:
        print(e.code, e.read().decode())
    except Exception as e:
        print("error", repr(e))
`
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, python, "-c", script, "http://"+addr+"/v1/batch", auth, path).CombinedOutput()
		if err != nil {
			t.Fatalf("python3: %v\n%s", err, out)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if len(lines) != 20 {
			t.Fatalf("%d answers, want 20:\n%s", len(lines), out)
		}
		for try, line := range lines {
			status, answer, _ := strings.Cut(line, " ")
			code := 0
			fmt.Sscan(status, &code)
			wantTooLarge(t, try, code, []byte(answer))
		}
	})

	// The gateway still serves, and stored nothing of the refused batches.
	wantStatus(t, f.post(t, "/v1/track", `{"userId":"u","event":"after"}`), 200, "")
	if msgs := readAll(t, f.log, "events"); len(msgs) != 1 {
		t.Fatalf("stored %d messages, want only the one after the refusals", len(msgs))
	}
}
