//go:build ((linux && amd64) || darwin) && !noxla

package model

import "github.com/gomlx/gomlx/backends/xla"

// Never let go-xla download a plugin from GitHub: offline that fails slowly, and a library must not
// install software behind the user's back.
func init() { xla.EnableAutoInstall(false) }

// xlaPlugins lists the installed PJRT plugins (a directory scan; no network).
func xlaPlugins() []string { return xla.GetAvailablePlugins() }
