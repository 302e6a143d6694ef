// SPDX-License-Identifier: Apache-2.0

package tracer

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
)

// ObjectsSHA256 is the SHA-256 of the embedded BPF objects: drops_bpfel.o then netrx_bpfel.o,
// each preceded by its length as 8 little-endian bytes, so moving bytes from one to the other
// changes the sum. `droptrace version` prints it: a binary found on a host is matched with the
// committed objects, hence with bpf/*.c, without disassembling it.
func ObjectsSHA256() string {
	return objectsSHA256(_DropsBytes, _NetrxBytes)
}

func objectsSHA256(objs ...[]byte) string {
	h := sha256.New()
	for _, obj := range objs {
		h.Write(binary.LittleEndian.AppendUint64(nil, uint64(len(obj))))
		h.Write(obj)
	}
	return hex.EncodeToString(h.Sum(nil))
}
