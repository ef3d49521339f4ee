//go:build !unix

package train

import "time"

// processCPU is not measured on this platform (the cpu-ms/op metric reads 0).
func processCPU() time.Duration { return 0 }
