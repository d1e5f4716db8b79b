#include "verdant/dist/sweep.hpp"

#include "verdant/dist/communicator.hpp"

namespace verdant::dist {

sweep::SweepReport run_distributed_sweep(sweep::SweepOptions o) {
  Communicator& comm = Communicator::world();
  if (!comm.distributed()) return sweep::run_sweep(o);
  comm.open_queue();
  o.next = [&comm] { return comm.fetch_add(1); };
  o.wait_for_others = [&comm] { comm.barrier(); };
  o.analyse = comm.rank() == 0;
  o.pick_model = o.pick_model && comm.rank() == 0;
  if (comm.rank() != 0) o.on_progress = nullptr;
  return sweep::run_sweep(o);
}

}  // namespace verdant::dist
