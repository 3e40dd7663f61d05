package main

import "context"

// reimport rebuilds the agent image from this checkout and imports every lab
// image into both nodes' containerd, without taking the lab down: the agent
// image then runs the code under test.
func (l *lab) reimport(ctx context.Context) error {
	tars, err := l.imageArchives(ctx)
	if err != nil {
		return err
	}
	for _, n := range nodes {
		if err := l.importImages(ctx, n, tars); err != nil {
			return err
		}
	}
	return nil
}
