// Package common is the program context every pane of the TUI shares: the
// terminal size, the theme, the keymap, the cluster and the clock.
package common

import (
	"time"

	"github.com/netsleuth/netsleuth/model"
	"github.com/netsleuth/netsleuth/ui/keys"
	"github.com/netsleuth/netsleuth/ui/theme"
)

// Context is passed to every component instead of globals.
type Context struct {
	Width, Height int
	Theme         *theme.Theme
	Keys          *keys.KeyMap
	Cluster       model.Cluster
	// Invocation is how the user runs netsleuth ("kubectl netsleuth").
	Invocation string
	// Now is the clock; tests fix it.
	Now func() time.Time
}

// New returns a context with the default keymap and the wall clock.
func New(th *theme.Theme, cluster model.Cluster) *Context {
	return &Context{Width: 80, Height: 24, Theme: th, Keys: keys.Default(), Cluster: cluster, Invocation: "netsleuth", Now: time.Now}
}
