package embedded

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// The key space of the pebble database:
//
//	t/<topic>                                   partition count, u32 big endian
//	m/<topic>/<partition u32><offset u64>       a message (see encodeValue)
//	l/<topic>/<partition u32>                   low watermark, u64: first retained offset
//	g<len u16><group><len u16><topic><partition u32>  a group's next offset, u64
//	j<len u16><group><len u16><topic>                 a group joined the topic, empty
//
// Integers are big endian so keys sort by partition and offset. Topic names
// never contain '/' (see validTopic), so one topic's keys never interleave
// with another's.
const (
	prefixTopic   = 't'
	prefixMessage = 'm'
	prefixLow     = 'l'
	prefixGroup   = 'g'
	prefixJoined  = 'j'
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

func messageKey(topic string, partition int, offset int64) []byte {
	return appendMessageKey(make([]byte, 0, 2+len(topic)+1+4+8), topic, partition, offset)
}

// appendMessageKey appends the key of a message to dst.
func appendMessageKey(dst []byte, topic string, partition int, offset int64) []byte {
	return binary.BigEndian.AppendUint64(appendPartitionPrefix(dst, prefixMessage, topic, partition), uint64(offset))
}

// offsetOfKey returns the offset at the end of a message key.
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

// A message value is:
//
//	append time, unix nanoseconds   u64
//	bytes                           u64: the partition's stored bytes up to and including this message
//	key length                      uvarint
//	key
//	value
//
// bytes grows with every message, so the size of any range of offsets is a
// subtraction and size retention is a binary search, like time.
const valueHeaderLen = 16

// encodedValueLen is the length of a value encodeValue encodes.
func encodedValueLen(keyLen, valueLen int) int {
	return valueHeaderLen + uvarintLen(uint64(keyLen)) + keyLen + valueLen
}

func uvarintLen(x uint64) int {
	n := 1
	for ; x >= 0x80; x >>= 7 {
		n++
	}
	return n
}

func encodeValue(dst []byte, appendTime, bytes int64, key, value []byte) []byte {
	dst = binary.BigEndian.AppendUint64(dst, uint64(appendTime))
	dst = binary.BigEndian.AppendUint64(dst, uint64(bytes))
	dst = binary.AppendUvarint(dst, uint64(len(key)))
	dst = append(dst, key...)
	return append(dst, value...)
}

// putHeader sets the append time and size of an encoded value.
func putHeader(v []byte, appendTime, bytes int64) {
	binary.BigEndian.PutUint64(v, uint64(appendTime))
	binary.BigEndian.PutUint64(v[8:], uint64(bytes))
}

// messageOverhead approximates the bytes a message stores besides its key
// and value: the pebble key's prefix, partition and offset, and the value's
// header.
const messageOverhead = 32

// storedSize is what a message counts toward RetentionBytes.
func storedSize(keyLen, valueLen int) int64 {
	return int64(messageOverhead + keyLen + valueLen)
}

// storedValue is a decoded message value.
type storedValue struct {
	time  int64
	bytes int64
	key   []byte
	value []byte
}

// decodeValue decodes v. key and value alias v.
func decodeValue(v []byte) (storedValue, error) {
	if len(v) < valueHeaderLen+1 {
		return storedValue{}, fmt.Errorf("message value of %d bytes is shorter than its header", len(v))
	}
	s := storedValue{
		time:  int64(binary.BigEndian.Uint64(v)),
		bytes: int64(binary.BigEndian.Uint64(v[8:])),
	}
	rest := v[valueHeaderLen:]
	n, w := binary.Uvarint(rest)
	if w <= 0 || n > uint64(len(rest)-w) {
		return storedValue{}, errors.New("message value has a bad key length")
	}
	rest = rest[w:]
	s.key, s.value = rest[:n], rest[n:]
	return s, nil
}

// messageSpanEnd returns the first key after the span of key, for pebble to
// end its tables at: the end of key's partition for a message key, the start
// of the message keys for a key sorting before them, and nil (no end) for a
// key after them. Tables that hold one partition's messages each do not
// overlap the tables of newer or older messages of any partition, so
// pebble moves them down its levels instead of rewriting them.
func messageSpanEnd(key []byte) []byte {
	messages := []byte{prefixMessage, '/'}
	switch {
	case bytes.Compare(key, messages) < 0:
		return messages
	case !bytes.HasPrefix(key, messages):
		return nil
	}
	slash := bytes.IndexByte(key[len(messages):], '/')
	if slash < 0 || len(key) < len(messages)+slash+1+4 {
		// Not a message key: end at the next topic's messages.
		return nil
	}
	end := len(messages) + slash + 1
	partition := binary.BigEndian.Uint32(key[end:])
	if partition == 1<<32-1 {
		return append(append([]byte(nil), key[:end-1]...), '/'+1)
	}
	return binary.BigEndian.AppendUint32(append([]byte(nil), key[:end]...), partition+1)
}
