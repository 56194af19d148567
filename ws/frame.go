package ws

import (
	"crypto/rand"
	"encoding/binary"
	"sync"
)

// Opcodes (RFC 6455 section 5.2).
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xA
)

const (
	maxHeader     = 14       // 2 + 8 (64-bit length) + 4 (masking key)
	maxControl    = 125      // control frame payload limit (section 5.5)
	maxBinaryData = 32 << 10 // payload bytes per binary frame we send
	// Raw bytes per base64 frame we send: a multiple of 3, so no padding inside a message, and
	// at least 32 KiB, so a relay's 32 KiB write leaves in one frame.
	maxBase64Data = 32769
	maxFrameSend  = maxBase64Data / 3 * 4 // the longest payload we send
	payloadAt     = 64                    // where a frameBuf's payload starts
	readFrames    = 4                     // binary frames ReadFrom reads at once
	aheadFrames   = 8                     // binary frames Read reads ahead (see Read)
	randBatch     = 4096                  // random bytes fetched at once for masking keys
)

// frameBuf holds one whole outgoing frame, so that it leaves in one write: the payload at
// payloadAt, 64-byte aligned as the kernel's copies need to run at full speed, and the header just
// before it. Taken from framePool per frame, never held while idle. readBuf is ReadFrom's, the same
// for a read of four binary frames' payload, taken per ReadFrom.
type frameBuf [payloadAt + maxFrameSend]byte
type readBuf [payloadAt + readFrames*(maxHeader+maxBinaryData)]byte

var readPool = sync.Pool{New: func() any { return new(readBuf) }}
var framePool = sync.Pool{New: func() any { return new(frameBuf) }}

// keySource batches crypto/rand reads: a frame takes 4 bytes of it.
type keySource struct {
	b [randBatch]byte
	i int
}

var keyPool = sync.Pool{New: func() any { return &keySource{i: randBatch} }}

// newMaskKey returns a fresh masking key from crypto/rand (section 5.3).
func newMaskKey() (key [4]byte, err error) {
	ks := keyPool.Get().(*keySource)
	defer keyPool.Put(ks)
	if ks.i+4 > len(ks.b) {
		if _, err := rand.Read(ks.b[:]); err != nil {
			return key, err
		}
		ks.i = 0
	}
	copy(key[:], ks.b[ks.i:])
	clear(ks.b[ks.i : ks.i+4]) // a used key never stays in memory for reuse
	ks.i += 4
	return key, nil
}

// putHeader writes a frame header for a payload of n bytes into b and
// returns its length; a masked header leaves its last 4 bytes for the key.
func putHeader(b []byte, op byte, fin bool, n int, masked bool) int {
	b[0] = op
	if fin {
		b[0] |= 0x80
	}
	h := 2
	switch {
	case n <= 125:
		b[1] = byte(n)
	case n <= 0xFFFF:
		b[1] = 126
		binary.BigEndian.PutUint16(b[2:], uint16(n))
		h = 4
	default:
		b[1] = 127
		binary.BigEndian.PutUint64(b[2:], uint64(n))
		h = 10
	}
	if masked {
		b[1] |= 0x80
		h += 4
	}
	return h
}

// mask XORs b in place with key, starting at key position pos (0-3), and
// returns the key position after b (section 5.3). It works 8 bytes at a time.
func mask(key [4]byte, pos int, b []byte) int {
	i := 0
	if len(b) >= 8 {
		var k8 [8]byte
		for j := range k8 {
			k8[j] = key[(pos+j)&3]
		}
		k := binary.LittleEndian.Uint64(k8[:])
		for ; i+32 <= len(b); i += 32 {
			s := b[i : i+32 : i+32]
			binary.LittleEndian.PutUint64(s, binary.LittleEndian.Uint64(s)^k)
			binary.LittleEndian.PutUint64(s[8:], binary.LittleEndian.Uint64(s[8:])^k)
			binary.LittleEndian.PutUint64(s[16:], binary.LittleEndian.Uint64(s[16:])^k)
			binary.LittleEndian.PutUint64(s[24:], binary.LittleEndian.Uint64(s[24:])^k)
		}
		for ; i+8 <= len(b); i += 8 {
			binary.LittleEndian.PutUint64(b[i:], binary.LittleEndian.Uint64(b[i:])^k)
		}
	}
	for ; i < len(b); i++ {
		b[i] ^= key[(pos+i)&3]
	}
	return (pos + len(b)) & 3
}

// validCloseCode reports whether a status code may appear in a Close frame
// on the wire (section 7.4 and the IANA registry).
func validCloseCode(code int) bool {
	return code >= 1000 && code <= 1003 || code >= 1007 && code <= 1014 ||
		code >= 3000 && code <= 4999
}
