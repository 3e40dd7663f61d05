//go:build !linux

package capture

import (
	"context"
	"errors"
	"io"
)

// Capture needs Linux's AF_PACKET sockets; elsewhere it validates opts and
// says so. Captures taken elsewhere can still be read with AnalyzeFile.
func Capture(ctx context.Context, opts Options, w io.Writer) (Stats, error) {
	if _, err := opts.validate(); err != nil {
		return Stats{}, err
	}
	return Stats{}, errors.New("live capture needs Linux (AF_PACKET sockets); capture with tcpdump and read the file instead")
}
