package embedded

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/switchyard/switchyard/queue"
)

// The key space of the pebble database:
//
//	b/<topic>/<partition u32><offset u64>       a block of messages from offset on (see appendRecord)
//	g<len u16><group><len u16><topic><partition u32>  a group's next offset, u64
//	j<len u16><group><len u16><topic>                 a group joined the topic, empty
//	l/<topic>/<partition u32>                   low watermark, u64: first retained offset
//	m/<topic>/<partition u32><offset u64>       one message, as logs before blocks stored
//	                                            them; Open moves them into blocks
//	t/<topic>                                   partition count, u32 big endian
//
// Integers are big endian so keys sort by partition and offset. Topic names
// never contain '/' (see validTopic), so one topic's keys never interleave
// with another's. Each commit writes one block per partition it appends to
// (or more, see maxBlockMessages), so pebble handles a key per block rather
// than per message.
const (
	prefixBlock         = 'b'
	prefixGroup         = 'g'
	prefixJoined        = 'j'
	prefixLow           = 'l'
	prefixSingleMessage = 'm'
	prefixTopic         = 't'
)

// maxTopicLen is Kafka's limit, so a topic name works on both backends.
const maxTopicLen = 249

// validTopic reports why a topic name is not accepted, or nil. Names follow
// Kafka's rules: 1 to 249 characters of ASCII letters, digits, '.', '_' and '-'.
func validTopic(name string) error {
	if name == "" {
		return errors.New("topic name is empty")
	}
	if len(name) > maxTopicLen {
		return fmt.Errorf("topic name is %d characters, want at most %d", len(name), maxTopicLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("topic name %q has character %q; use letters, digits, '.', '_' and '-'", name, c)
		}
	}
	return nil
}

func topicKey(topic string) []byte {
	k := make([]byte, 0, 2+len(topic))
	k = append(k, prefixTopic, '/')
	return append(k, topic...)
}

// topicKeyBounds bounds the keys of all topics' metadata.
func topicKeyBounds() (lower, upper []byte) {
	return []byte{prefixTopic, '/'}, []byte{prefixTopic, '/' + 1}
}

func partitionPrefix(prefix byte, topic string, partition int) []byte {
	return appendPartitionPrefix(make([]byte, 0, 2+len(topic)+1+4+8), prefix, topic, partition)
}

func appendPartitionPrefix(dst []byte, prefix byte, topic string, partition int) []byte {
	dst = append(dst, prefix, '/')
	dst = append(dst, topic...)
	dst = append(dst, '/')
	return binary.BigEndian.AppendUint32(dst, uint32(partition))
}

// blockKey is the key of the block of partition's messages that begins at
// offset first.
func blockKey(topic string, partition int, first int64) []byte {
	return appendBlockKey(make([]byte, 0, 2+len(topic)+1+4+8), topic, partition, first)
}

// appendBlockKey appends blockKey(topic, partition, first) to dst.
func appendBlockKey(dst []byte, topic string, partition int, first int64) []byte {
	return binary.BigEndian.AppendUint64(appendPartitionPrefix(dst, prefixBlock, topic, partition), uint64(first))
}

// offsetOfKey returns the offset at the end of a block key (or a single
// message's key).
func offsetOfKey(key []byte) int64 {
	return int64(binary.BigEndian.Uint64(key[len(key)-8:]))
}

func lowKey(topic string, partition int) []byte {
	return partitionPrefix(prefixLow, topic, partition)
}

func groupKey(group, topic string, partition int) []byte {
	return binary.BigEndian.AppendUint32(groupTopicKey(prefixGroup, group, topic), uint32(partition))
}

// joinedKey records that group subscribed to topic, so retention keeps
// what the group has not committed even before its first commit.
func joinedKey(group, topic string) []byte {
	return groupTopicKey(prefixJoined, group, topic)
}

func groupTopicKey(prefix byte, group, topic string) []byte {
	k := make([]byte, 0, 1+2+len(group)+2+len(topic)+4)
	k = append(k, prefix)
	k = binary.BigEndian.AppendUint16(k, uint16(len(group)))
	k = append(k, group...)
	k = binary.BigEndian.AppendUint16(k, uint16(len(topic)))
	return append(k, topic...)
}

// parseGroupTopicKey splits a groupKey or joinedKey after its prefix into
// the group, the topic and what follows them.
func parseGroupTopicKey(k []byte) (group, topic string, rest []byte, err error) {
	if len(k) == 0 {
		return "", "", nil, errors.New("empty group key")
	}
	rest = k[1:]
	var names [2]string
	for i := range names {
		if len(rest) < 2 {
			return "", "", nil, fmt.Errorf("group key %q is cut short", k)
		}
		n := int(binary.BigEndian.Uint16(rest))
		if len(rest) < 2+n {
			return "", "", nil, fmt.Errorf("group key %q is cut short", k)
		}
		names[i] = string(rest[2 : 2+n])
		rest = rest[2+n:]
	}
	return names[0], names[1], rest, nil
}

// maxGroupLen keeps a group name within its u16 length prefix.
const maxGroupLen = 1<<16 - 1

// A block is its messages' records back to back, the first at the offset
// in the block's key and each next one at the next offset. A record is:
//
//	append time, unix nanoseconds   u64
//	bytes                           u64: the partition's stored bytes up to and including this message
//	key length                      uvarint
//	key
//	headers length                  uvarint
//	headers                         none when there are none, else their count (uvarint) and each
//	                                header's key and value, each after its length (uvarint)
//	value length                    uvarint
//	value
//
// bytes grows with every message, so the size of any range of offsets is a
// subtraction and size retention is a binary search, like time.
const recordHeaderLen = 16

const (
	// maxBlockMessages and maxBlockBytes bound a block: a commit of more of
	// one partition's messages writes several blocks, so a reader seeking an
	// offset decodes at most this much to reach it.
	maxBlockMessages = 128
	maxBlockBytes    = 128 << 10
)

// recordLen is the length of a record of a key, headers encoded in
// headersLen bytes (see headersLen) and a value.
func recordLen(keyLen, headersLen, valueLen int) int {
	return recordHeaderLen + uvarintLen(uint64(keyLen)) + keyLen + uvarintLen(uint64(headersLen)) + headersLen +
		uvarintLen(uint64(valueLen)) + valueLen
}

// headersLen is the length of headers encoded.
func headersLen(headers []queue.Header) int {
	if len(headers) == 0 {
		return 0
	}
	n := uvarintLen(uint64(len(headers)))
	for _, h := range headers {
		n += uvarintLen(uint64(len(h.Key))) + len(h.Key) + uvarintLen(uint64(len(h.Value))) + len(h.Value)
	}
	return n
}

func uvarintLen(x uint64) int {
	n := 1
	for ; x >= 0x80; x >>= 7 {
		n++
	}
	return n
}

// appendRecord appends a record to dst.
func appendRecord(dst []byte, appendTime, bytes int64, key []byte, headers []queue.Header, value []byte) []byte {
	dst = binary.BigEndian.AppendUint64(dst, uint64(appendTime))
	dst = binary.BigEndian.AppendUint64(dst, uint64(bytes))
	dst = binary.AppendUvarint(dst, uint64(len(key)))
	dst = append(dst, key...)
	dst = binary.AppendUvarint(dst, uint64(headersLen(headers)))
	if len(headers) > 0 {
		dst = binary.AppendUvarint(dst, uint64(len(headers)))
		for _, h := range headers {
			dst = binary.AppendUvarint(dst, uint64(len(h.Key)))
			dst = append(dst, h.Key...)
			dst = binary.AppendUvarint(dst, uint64(len(h.Value)))
			dst = append(dst, h.Value...)
		}
	}
	dst = binary.AppendUvarint(dst, uint64(len(value)))
	return append(dst, value...)
}

// putHeader sets the append time and size of an encoded record.
func putHeader(r []byte, appendTime, bytes int64) {
	binary.BigEndian.PutUint64(r, uint64(appendTime))
	binary.BigEndian.PutUint64(r[8:], uint64(bytes))
}

// messageOverhead approximates the bytes a message stores besides its key
// and value: the pebble key's prefix, partition and offset, and the value's
// header.
const messageOverhead = 32

// storedSize is what a message counts toward RetentionBytes.
func storedSize(keyLen, valueLen int) int64 {
	return int64(messageOverhead + keyLen + valueLen)
}

// record is a decoded record. key, headers (encoded) and value alias the
// block.
type record struct {
	time    int64
	bytes   int64
	key     []byte
	headers []byte
	value   []byte
}

// storedSize is what the record counts toward RetentionBytes, as its
// message did when published.
func (r record) storedSize() int64 { return storedSize(len(r.key), len(r.headers)+len(r.value)) }

// decodeHeaders appends encoded headers to dst. Their values alias b, with
// the capacity b has left after them, for the caller to cap; a key equal to
// the last one appended shares its string.
func decodeHeaders(dst []queue.Header, b []byte) ([]queue.Header, error) {
	if len(b) == 0 {
		return dst, nil
	}
	n, w := binary.Uvarint(b)
	if w <= 0 || n == 0 || n > uint64(len(b)) {
		return dst, errors.New("bad header count")
	}
	rest := b[w:]
	for i := range n {
		key, r, err := lengthPrefixed(rest)
		if err != nil {
			return dst, fmt.Errorf("header %d's key: %w", i, err)
		}
		value, r, err := lengthPrefixed(r)
		if err != nil {
			return dst, fmt.Errorf("header %d's value: %w", i, err)
		}
		h := queue.Header{Value: value}
		if last := len(dst) - 1; last >= 0 && dst[last].Key == string(key) {
			h.Key = dst[last].Key
		} else {
			h.Key = string(key)
		}
		dst = append(dst, h)
		rest = r
	}
	if len(rest) != 0 {
		return dst, fmt.Errorf("%d bytes after the headers", len(rest))
	}
	return dst, nil
}

// nextRecord decodes the record at the start of b and returns it with the
// rest of b.
func nextRecord(b []byte) (record, []byte, error) {
	if len(b) < recordHeaderLen+3 {
		return record{}, nil, fmt.Errorf("a record of %d bytes is shorter than its header", len(b))
	}
	r := record{
		time:  int64(binary.BigEndian.Uint64(b)),
		bytes: int64(binary.BigEndian.Uint64(b[8:])),
	}
	rest := b[recordHeaderLen:]
	var err error
	if r.key, rest, err = lengthPrefixed(rest); err != nil {
		return record{}, nil, fmt.Errorf("a record's key: %w", err)
	}
	if r.headers, rest, err = lengthPrefixed(rest); err != nil {
		return record{}, nil, fmt.Errorf("a record's headers: %w", err)
	}
	if r.value, rest, err = lengthPrefixed(rest); err != nil {
		return record{}, nil, fmt.Errorf("a record's value: %w", err)
	}
	return r, rest, nil
}

// lengthPrefixed splits b into the bytes its uvarint length prefix counts
// and the rest.
func lengthPrefixed(b []byte) (field, rest []byte, err error) {
	n, w := binary.Uvarint(b)
	if w <= 0 || n > uint64(len(b)-w) {
		return nil, nil, errors.New("bad length")
	}
	return b[w : w+int(n)], b[w+int(n):], nil
}

// decodeBlock calls f with each record of block, which begins at offset
// first, in order, until f returns false.
func decodeBlock(block []byte, first int64, f func(offset int64, r record) bool) error {
	for offset := first; len(block) > 0; offset++ {
		r, rest, err := nextRecord(block)
		if err != nil {
			return fmt.Errorf("offset %d: %w", offset, err)
		}
		if !f(offset, r) {
			return nil
		}
		block = rest
	}
	return nil
}

// blockLast returns the number of records of block and its last record.
func blockLast(block []byte) (int64, record, error) {
	var n int64
	var last record
	err := decodeBlock(block, 0, func(_ int64, r record) bool {
		n, last = n+1, r
		return true
	})
	if err == nil && n == 0 {
		err = errors.New("the block is empty")
	}
	return n, last, err
}

// blockSpanEnd returns the first key after the span of key, for pebble to
// end its tables at: the end of key's partition for a block key, the start
// of the block keys for a key sorting before them, and nil (no end) for a
// key after them. Tables that hold one partition's blocks each do not
// overlap the tables of newer or older blocks of any partition, so pebble
// moves them down its levels instead of rewriting them.
func blockSpanEnd(key []byte) []byte {
	blocks := []byte{prefixBlock, '/'}
	switch {
	case bytes.Compare(key, blocks) < 0:
		return blocks
	case !bytes.HasPrefix(key, blocks):
		return nil
	}
	slash := bytes.IndexByte(key[len(blocks):], '/')
	if slash < 0 || len(key) < len(blocks)+slash+1+4 {
		// Not a block key: end at the next topic's blocks.
		return nil
	}
	end := len(blocks) + slash + 1
	partition := binary.BigEndian.Uint32(key[end:])
	if partition == 1<<32-1 {
		return append(append([]byte(nil), key[:end-1]...), '/'+1)
	}
	return binary.BigEndian.AppendUint32(append([]byte(nil), key[:end]...), partition+1)
}
