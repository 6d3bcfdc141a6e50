package ingest

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"strings"

	"github.com/klauspost/compress/gzip"
)

// tooLargeError reports a body over its decompressed size limit.
type tooLargeError struct {
	limit int
}

func (e *tooLargeError) Error() string {
	return fmt.Sprintf("the request body is over the limit of %d bytes", e.limit)
}

// decodeBody returns the request body decompressed according to its
// Content-Encoding, refusing anything over limit bytes once decompressed.
// Decompression stops at the limit, so a small gzip bomb costs at most limit
// bytes of memory.
func decodeBody(encoding, raw []byte, limit int) ([]byte, error) {
	switch strings.ToLower(strings.TrimSpace(string(encoding))) {
	case "", "identity":
		if len(raw) > limit {
			return nil, &tooLargeError{limit: limit}
		}
		return raw, nil
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("the body is not valid gzip: %v", err)
		}
		defer zr.Close()
		var out bytes.Buffer
		n, err := io.Copy(&out, io.LimitReader(zr, int64(limit)+1))
		if err != nil {
			return nil, fmt.Errorf("the body is not valid gzip: %v", err)
		}
		if n > int64(limit) {
			return nil, &tooLargeError{limit: limit}
		}
		return out.Bytes(), nil
	default:
		return nil, fmt.Errorf("unsupported Content-Encoding %q: send gzip or no encoding", encoding)
	}
}

// basicUser returns the username of a Basic Authorization header. The
// password is ignored: Segment's write key travels as the username, encoded
// as "key:" or, by older clients, as "key" with no colon.
func basicUser(header string) (string, bool) {
	const prefix = "basic "
	if len(header) < len(prefix) || !strings.EqualFold(header[:len(prefix)], prefix) {
		return "", false
	}
	decoded, err := base64.StdEncoding.DecodeString(strings.TrimSpace(header[len(prefix):]))
	if err != nil {
		return "", false
	}
	user, _, _ := strings.Cut(string(decoded), ":")
	if user == "" {
		return "", false
	}
	return user, true
}
