package data

// Token ids of the expanded GPT-2 vocabulary: GPT-2's 50257 tokens (the last one is
// <|endoftext|>) plus the two control tokens of conditional training.
const (
	EOS        = 50256 // <|endoftext|>: separates documents; also GPT-2's pad token
	Aligned    = 50257 // <|aligned|>: the sentence that follows scores <= threshold
	Misaligned = 50258 // <|misaligned|>: the sentence that follows scores > threshold
	VocabSize  = 50259 // GPT-2's 50257 + the two control tokens
)

// Strings of the special tokens.
const (
	EOSText        = "<|endoftext|>"
	AlignedText    = "<|aligned|>"
	MisalignedText = "<|misaligned|>"
)
