//go:build tools

// Package prefgpt pins the modules the project builds on, so that parallel work on
// separate packages never has to edit go.mod at the same time.
package prefgpt

import (
	_ "github.com/chzyer/readline"
	_ "github.com/go-echarts/go-echarts/v2/charts"
	_ "github.com/gomlx/go-huggingface/hub"
	_ "github.com/gomlx/gomlx/backends/default"
	_ "github.com/gomlx/gomlx/backends/simplego"
	_ "github.com/gomlx/gomlx/pkg/core/graph"
	_ "github.com/gomlx/gomlx/pkg/ml/context"
	_ "github.com/gomlx/gomlx/pkg/ml/context/checkpoints"
	_ "github.com/gomlx/onnx-gomlx/onnx"
	_ "github.com/janpfeifer/gonb/gonbui"
	_ "github.com/klauspost/compress/gzip"
	_ "github.com/nlpodyssey/gopickle/pickle"
	_ "github.com/parquet-go/parquet-go"
	_ "github.com/schollz/progressbar/v3"
	_ "github.com/tiktoken-go/tokenizer"
)
