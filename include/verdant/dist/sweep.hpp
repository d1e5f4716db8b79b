#pragma once
// A sweep spread over the processes of an MPI job: they draw trials from one queue (a counter
// on rank 0), each trial runs in one process, and rank 0 analyses them all once every process
// is done. The trials and so the results are those of a serial sweep; finished trials are
// skipped, whatever the number of processes that ran them.
#include "verdant/sweep/run.hpp"

namespace verdant::dist {

// run_sweep over the world (a plain run_sweep when the world is one process). Only rank 0's
// report holds the analysis.
sweep::SweepReport run_distributed_sweep(sweep::SweepOptions options);

}  // namespace verdant::dist
