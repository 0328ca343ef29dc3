package main

import (
	"fmt"
	"io"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/dmabench/dmabench/ftrace"
	"github.com/dmabench/dmabench/progress"
	"github.com/dmabench/dmabench/registry"
	"github.com/dmabench/dmabench/report"
	"github.com/dmabench/dmabench/validate"
	"github.com/dmabench/dmabench/workloads/trace"
)

func newImportCmd(stdout, stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{Use: "import", Short: "Convert traces captured on real kernels into dmabench traces"}
	var out, progressMode string
	ft := &cobra.Command{
		Use:   "ftrace IN -o OUT",
		Short: "Convert ftrace / trace-cmd text of kmem, dma, iommu and swiotlb events",
		Long: `import ftrace converts the text of ftrace (trace, trace_pipe) or trace-cmd
report into a dmabench trace: kmalloc, kmalloc_node, kfree, kmem_cache_alloc
[_node], kmem_cache_free, mm_page_alloc, mm_page_free; dma_alloc*, dma_free*,
dma_map_page/resource/phys and their unmaps, dma_map_sg, dma_unmap_sg,
dma_sync_*; iommu map and unmap. It prints how many lines of each event it
converted and how many it skipped, by reason.`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(_ *cobra.Command, args []string) error {
			if err := registry.CheckOutputFile("import ftrace: -o", out); err != nil {
				return err
			}
			in, err := openInput(args[0])
			if err != nil {
				return err
			}
			defer in.Close()
			slab, err := validate.DetectSlab(args[0])
			if err != nil {
				return err
			}
			pr, err := progress.NewTask(progressMode, stderr, "import "+filepath.Base(args[0]), trace.ContentSize(args[0]), "bytes")
			if err != nil {
				return usageError{Err: err}
			}
			defer pr.Wait()
			var st ftrace.Stats
			err = report.WriteAtomic(out, func(w io.Writer) error {
				st, err = ftrace.Import(args[0], progress.Reader(in, pr), trace.NewWriterFor(out, w), validate.SlabKnobs(slab), "slab allocator: "+validate.DescribeSlab(slab))
				return err
			})
			if err != nil {
				return err
			}
			st.Write(stdout, args[0], out)
			if slab.Total > 0 {
				fmt.Fprintf(stdout, "  slab allocator %s; replay's dmaalloc uses its sizes\n", validate.DescribeSlab(slab))
			}
			return nil
		},
	}
	ft.Flags().StringVarP(&out, "output", "o", "", "trace file to write (.gz: compressed; .bin or .bin.gz: the binary encoding)")
	ft.Flags().StringVar(&progressMode, "progress", "auto", "progress on stderr, `MODE`: auto (a bar on a terminal, plain lines otherwise), bar, plain, none")
	cmd.AddCommand(ft)
	return cmd
}
