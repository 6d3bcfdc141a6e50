package hubspot

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"sync"
)

// idFile remembers key → HubSpot id pairs (a company's domain and its
// company id) in an append-only file of JSON lines, so a restart does not
// search HubSpot again for what it already found. Losing the file's tail
// in a crash costs only a search.
type idFile struct {
	mu sync.Mutex
	f  *os.File
}

type idLine struct {
	Key string `json:"k"`
	ID  string `json:"id"`
}

// openIDFile opens (creating) the file at path and returns what it holds;
// for a key written more than once, the last id wins. A torn last line is
// ignored.
func openIDFile(path string) (*idFile, map[string]string, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("opening %s: %w", path, err)
	}
	ids := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var l idLine
		if json.Unmarshal(sc.Bytes(), &l) == nil && l.Key != "" && l.ID != "" {
			ids[l.Key] = l.ID
		}
	}
	if err := sc.Err(); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("reading %s: %w", path, err)
	}
	// End a torn last line, so the next one starts clean.
	if info, err := f.Stat(); err == nil && info.Size() > 0 {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, info.Size()-1); err == nil && last[0] != '\n' {
			f.Write([]byte{'\n'})
		}
	}
	return &idFile{f: f}, ids, nil
}

// add appends a pair.
func (f *idFile) add(key, id string) error {
	line, err := json.Marshal(idLine{Key: key, ID: id})
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	_, err = f.f.Write(append(line, '\n'))
	return err
}

func (f *idFile) close() error { return f.f.Close() }
