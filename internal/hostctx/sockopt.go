// SPDX-License-Identifier: Apache-2.0

package hostctx

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// ErrNotThatSocket means the owner's descriptor no longer holds the socket asked for: it was
// closed, and the number reused, since the owner was found.
var ErrNotThatSocket = errors.New("descriptor no longer holds the socket")

// SocketState is what only the socket itself tells, not /proc/net.
type SocketState struct {
	// RcvBuf is the effective receive buffer in bytes: SO_RCVBUF, what setsockopt asked for
	// doubled (the kernel's allowance for its own overhead) and capped by net.core.rmem_max,
	// or the rmem_default it started with.
	RcvBuf int
	// Listening is set for a TCP listener; AcceptQueue is then its connections waiting for
	// accept() and AcceptBacklog the queue's limit (the listen() backlog capped by
	// net.core.somaxconn), from TCP_INFO (tcp_get_info reports them for a listener in
	// tcpi_unacked and tcpi_sacked).
	Listening                  bool
	AcceptQueue, AcceptBacklog uint32
}

// Inspect reads a socket's state through a duplicate of its holder's descriptor:
// pidfd_getfd (Linux 5.6, CAP_SYS_PTRACE over the holder). No /proc file shows these figures,
// and sock_diag would need to enter the holder's network namespace (CAP_SYS_ADMIN). The
// duplicate is checked to be the socket asked for, read and closed at once.
func Inspect(o Owner, inode uint64) (SocketState, error) {
	var st SocketState
	pidfd, err := unix.PidfdOpen(o.PID, 0)
	if err != nil {
		return st, fmt.Errorf("pidfd_open %d: %w", o.PID, err)
	}
	defer unix.Close(pidfd)
	fd, err := unix.PidfdGetfd(pidfd, o.FD, 0)
	if err != nil {
		return st, fmt.Errorf("pidfd_getfd %d fd %d: %w", o.PID, o.FD, err)
	}
	defer unix.Close(fd)
	var stat unix.Stat_t
	if err := unix.Fstat(fd, &stat); err != nil {
		return st, fmt.Errorf("fstat pid %d fd %d: %w", o.PID, o.FD, err)
	}
	if stat.Mode&unix.S_IFMT != unix.S_IFSOCK || stat.Ino != inode {
		return st, fmt.Errorf("pid %d fd %d: %w", o.PID, o.FD, ErrNotThatSocket)
	}
	if st.RcvBuf, err = unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF); err != nil {
		return st, fmt.Errorf("SO_RCVBUF of pid %d fd %d: %w", o.PID, o.FD, err)
	}
	// Go (since 1.24) and others listen with MPTCP where the kernel has it: TCP_INFO of an
	// MPTCP listener reports its queue as TCP's does, and its subflow listener in
	// /proc/net/tcp carries the same inode.
	proto, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PROTOCOL)
	if err != nil || proto != unix.IPPROTO_TCP && proto != unix.IPPROTO_MPTCP {
		return st, nil
	}
	if acc, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN); err != nil || acc == 0 {
		return st, nil
	}
	info, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
	if err != nil {
		return st, fmt.Errorf("TCP_INFO of pid %d fd %d: %w", o.PID, o.FD, err)
	}
	st.Listening, st.AcceptQueue, st.AcceptBacklog = true, info.Unacked, info.Sacked
	return st, nil
}
