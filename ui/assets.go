package ui

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
)

//go:embed assets
var assetFS embed.FS

// asset is one embedded file, with its gzipped form made once at start.
type asset struct {
	body, gz    []byte
	contentType string
}

// assets serves the embedded files at /ui/assets/<hash>/<name>: the hash is
// of the whole set, so a changed file gets a new path and every path can be
// cached for a year.
type assets struct {
	prefix string // "/ui/assets/<hash>/"
	files  map[string]*asset
}

func loadAssets() (*assets, error) {
	a := &assets{files: map[string]*asset{}}
	sum := sha256.New()
	err := fs.WalkDir(assetFS, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := assetFS.ReadFile(p)
		if err != nil {
			return err
		}
		name := strings.TrimPrefix(p, "assets/")
		fmt.Fprintf(sum, "%s\x00%d\x00", name, len(body))
		sum.Write(body)
		var gz bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
		zw.Write(body)
		if err := zw.Close(); err != nil {
			return err
		}
		ct := mime.TypeByExtension(path.Ext(name))
		if ct == "" || path.Base(name) == "LICENSE" {
			ct = "text/plain; charset=utf-8"
		}
		a.files[name] = &asset{body: body, gz: gz.Bytes(), contentType: ct}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ui: load assets: %w", err)
	}
	a.prefix = "/ui/assets/" + hex.EncodeToString(sum.Sum(nil))[:12] + "/"
	return a, nil
}

// url is the path of the named asset; it panics on an unknown name, which
// only a template typo can cause.
func (a *assets) url(name string) string {
	if _, ok := a.files[name]; !ok {
		panic("ui: no asset " + name)
	}
	return a.prefix + name
}

func (a *assets) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name, ok := strings.CutPrefix(r.URL.Path, a.prefix)
	f := a.files[name]
	if !ok || f == nil {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", f.contentType)
	h.Set("Cache-Control", "public, max-age=31536000, immutable")
	h.Set("Vary", "Accept-Encoding")
	h.Set("X-Content-Type-Options", "nosniff")
	body := f.body
	if acceptsGzip(r) {
		h.Set("Content-Encoding", "gzip")
		body = f.gz
	}
	h.Set("Content-Length", fmt.Sprint(len(body)))
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(enc), "gzip") && strings.ReplaceAll(params, " ", "") != "q=0" {
			return true
		}
	}
	return false
}
