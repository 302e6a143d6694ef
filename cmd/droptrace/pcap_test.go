// SPDX-License-Identifier: Apache-2.0

package main

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/droptrace/droptrace/internal/pcapng"
	"github.com/droptrace/droptrace/internal/record"
)

type noSpace struct{}

func (noSpace) Write([]byte) (int, error) { return 0, errors.New("no space left on device") }

// Packets that could not be written end the session with exit status 3, as lost records do.
func TestLostPacketsExitStatus(t *testing.T) {
	p := &packets{w: pcapng.New(noSpace{}, 128, "test"), name: "drops.pcapng"}
	if err := p.lostError(); err != nil {
		t.Fatalf("nothing lost yet: %v", err)
	}
	p.w.Write(&pcapng.Packet{Time: time.Now(), Drop: &record.Drop{Reason: "NO_SOCKET"}, Data: []byte{1}, OrigLen: 1})
	p.w.Flush()
	err := p.lostError()
	if !errors.Is(err, errRecordsLost) || exitCode(err) != exitLost || !strings.Contains(err.Error(), "1 packets could not be written to drops.pcapng") {
		t.Errorf("lost packet: %v (exit %d), want exit %d naming the file", err, exitCode(err), exitLost)
	}
}
