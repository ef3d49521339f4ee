//go:build !(((linux && amd64) || darwin) && !noxla)

package model

// Built without XLA support (tag noxla or an unsupported platform): only the pure-Go backend exists.
func xlaPlugins() []string { return nil }
