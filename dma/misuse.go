package dma

// Leak is an object still live when every source of a replay had ended.
type Leak struct {
	Workload int   `json:"workload"`
	ID       ID    `json:"id"`
	Line     int64 `json:"line,omitempty"` // trace line of its allocation or map
}

// MisuseEntry is one event that broke the DMA API's rules, as DMA-API
// debugging would print it.
type MisuseEntry struct {
	Line int64  `json:"line,omitempty"`
	Kind string `json:"kind"`
	ID   ID     `json:"id"`
	What string `json:"event"`
}
