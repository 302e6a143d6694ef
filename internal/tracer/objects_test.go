// SPDX-License-Identifier: Apache-2.0

package tracer

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"os"
	"testing"
)

// The hash `droptrace version` prints is that of the committed object files, in the documented
// framing, so it can be recomputed from a checkout with sha256sum-like tools.
func TestObjectsSHA256IsTheCommittedObjects(t *testing.T) {
	h := sha256.New()
	for _, name := range []string{"drops_bpfel.o", "netrx_bpfel.o"} {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		var n [8]byte
		binary.LittleEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	if got, want := ObjectsSHA256(), hex.EncodeToString(h.Sum(nil)); got != want {
		t.Errorf("ObjectsSHA256() = %s, the committed objects hash to %s", got, want)
	}
	if objectsSHA256([]byte("ab"), []byte("c")) == objectsSHA256([]byte("a"), []byte("bc")) {
		t.Error("moving a byte from one object to the next keeps the hash")
	}
}
