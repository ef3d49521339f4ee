package data

import "fmt"

func openParquetRecords(path string, opts ReadOptions) (RecordReader, error) {
	return nil, fmt.Errorf("opening records %s: parquet reading is not implemented yet", path)
}
