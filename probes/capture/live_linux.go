//go:build linux

package capture

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"

	"github.com/gopacket/gopacket/pcapgo"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// Capture captures on one interface with an AF_PACKET socket (no libpcap)
// and streams a pcap to w until ctx is done or a bound of opts is reached.
// The filter runs in the kernel; it is also checked on each packet read,
// since packets can queue on the socket before the filter is attached. On
// a loopback interface the outgoing copy of each packet is dropped in the
// kernel, so each packet is captured once, as tcpdump does.
func Capture(ctx context.Context, opts Options, w io.Writer) (Stats, error) {
	var stats Stats
	opts, err := opts.validate()
	if err != nil {
		return stats, err
	}
	ifc, err := net.InterfaceByName(opts.Iface)
	if err != nil {
		return stats, fmt.Errorf("there is no network interface %q here to capture on: %w", opts.Iface, err)
	}
	h, err := openHandle(ifc, opts)
	if err != nil {
		return stats, err
	}
	check, err := userFilter(opts.Filter)
	if err != nil {
		_ = h.Close()
		return stats, err
	}
	bw, err := newBoundedWriter(w, opts, &stats)
	if err != nil {
		_ = h.Close()
		return stats, err
	}
	ctx, cancel := context.WithTimeoutCause(ctx, opts.Duration, errDuration)
	defer cancel()
	closer := startCloser(ctx, h)
	read, err := readLoop(ctx, h, bw, check)
	cancel()
	kernel := closer.wait()
	stats.KernelPackets, stats.KernelDrops = kernel.packets, kernel.drops
	if unread := int(kernel.packets) - int(kernel.drops) - read; unread > 0 {
		stats.DroppedByBound += unread
	}
	if stats.Stopped == "" {
		stats.Stopped = "cancelled"
		if errors.Is(context.Cause(ctx), errDuration) {
			stats.Stopped = "duration"
		}
	}
	if err != nil {
		return stats, fmt.Errorf("capture on %s: %w", opts.Iface, err)
	}
	return stats, nil
}

var errDuration = errors.New("capture duration reached")

// openHandle opens the socket, sets the snap length and attaches the filter.
func openHandle(ifc *net.Interface, opts Options) (*pcapgo.EthernetHandle, error) {
	h, err := pcapgo.NewEthernetHandle(ifc.Name)
	if err != nil {
		if errors.Is(err, os.ErrPermission) || errors.Is(err, syscall.EPERM) || isPermission(err) {
			return nil, fmt.Errorf("capturing on %s needs root or CAP_NET_RAW: %w", ifc.Name, err)
		}
		return nil, fmt.Errorf("cannot open a packet socket on %s: %w", ifc.Name, err)
	}
	if err := h.SetCaptureLength(opts.SnapLen); err != nil {
		_ = h.Close()
		return nil, fmt.Errorf("set snap length on %s: %w", ifc.Name, err)
	}
	prog := opts.Filter
	if ifc.Flags&net.FlagLoopback != 0 {
		prog, err = dropOutgoing(prog)
		if err != nil {
			_ = h.Close()
			return nil, err
		}
	}
	if len(prog) > 0 {
		if err := h.SetBPF(prog); err != nil {
			_ = h.Close()
			return nil, fmt.Errorf("attach the filter on %s: %w", ifc.Name, err)
		}
	}
	_, _ = h.Stats() // the counters start now, with the filter in place
	return h, nil
}

// isPermission reports an EPERM/EACCES that pcapgo formatted with %s.
func isPermission(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, syscall.EPERM.Error()) || strings.Contains(msg, syscall.EACCES.Error())
}

// dropOutgoing prefixes a program with "drop packets this host sends":
// on loopback every packet is seen leaving and arriving.
func dropOutgoing(prog []bpf.RawInstruction) ([]bpf.RawInstruction, error) {
	head := []bpf.Instruction{
		bpf.LoadExtension{Num: bpf.ExtType},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.PACKET_OUTGOING, SkipTrue: 0, SkipFalse: 1},
		bpf.RetConstant{Val: 0},
	}
	if len(prog) == 0 {
		head = append(head, bpf.RetConstant{Val: FilterSnapLen})
	}
	raw, err := bpf.Assemble(head)
	if err != nil {
		return nil, fmt.Errorf("assemble the loopback filter: %w", err)
	}
	return append(raw, prog...), nil
}

// userFilter returns a VM for the caller's filter, nil when it is empty
// or uses kernel extensions the VM cannot run.
func userFilter(prog []bpf.RawInstruction) (*bpf.VM, error) {
	if len(prog) == 0 {
		return nil, nil
	}
	ins, allDecoded := bpf.Disassemble(prog)
	if !allDecoded {
		return nil, nil
	}
	vm, err := bpf.NewVM(ins)
	if err != nil {
		return nil, fmt.Errorf("the capture filter is not a valid BPF program: %w", err)
	}
	return vm, nil
}

// readLoop writes admitted packets until a bound or ctx ends it, and
// returns how many packets it read from the socket.
func readLoop(ctx context.Context, h *pcapgo.EthernetHandle, bw *boundedWriter, check *bpf.VM) (int, error) {
	read := 0
	for {
		data, ci, err := h.ZeroCopyReadPacketData()
		if err != nil {
			if ctx.Err() != nil {
				return read, nil // the closer closed the socket
			}
			return read, err
		}
		read++
		if check != nil {
			if n, err := check.Run(data); err != nil || n == 0 {
				continue
			}
		}
		full, err := bw.write(ci, data)
		if err != nil || full {
			return read, err
		}
	}
}

type kernelStats struct{ packets, drops uint64 }

// closer closes the socket when the capture's context ends, which wakes
// a blocked read, after reading the kernel's counters.
type closer struct {
	done  chan struct{}
	stats kernelStats
}

func startCloser(ctx context.Context, h *pcapgo.EthernetHandle) *closer {
	c := &closer{done: make(chan struct{})}
	go func() {
		defer close(c.done)
		<-ctx.Done()
		if s, err := h.Stats(); err == nil {
			c.stats = kernelStats{packets: uint64(s.Packets), drops: uint64(s.Drops)}
		}
		_ = h.Close()
	}()
	return c
}

// wait returns the kernel counters once the socket is closed.
func (c *closer) wait() kernelStats {
	<-c.done
	return c.stats
}
