#include "verdant/dist/communicator.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <utility>

#include "verdant/core/error.hpp"

#if defined(VERDANT_HAVE_MPI)
#include <mpi.h>
#endif

namespace verdant::dist {

bool built_with_mpi() {
#if defined(VERDANT_HAVE_MPI)
  return true;
#else
  return false;
#endif
}

bool launched_by_mpirun() {
  return std::getenv("OMPI_COMM_WORLD_SIZE") != nullptr || std::getenv("PMIX_RANK") != nullptr;
}

#if defined(VERDANT_HAVE_MPI)

struct Communicator::Mpi {
  MPI_Comm world = MPI_COMM_WORLD;
  std::vector<MPI_Request> pending;
  MPI_Win counter_window = MPI_WIN_NULL;  // the work queue's counter, on rank 0
  bool initialized_here = false;
};

namespace {
void check(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  throw Error(std::string("MPI ") + what +
              " failed: " + std::string(text, static_cast<std::size_t>(len)));
}
}  // namespace

void Communicator::init(bool required) {
  if (mpi_ || (!launched_by_mpirun() && !required)) return;
  mpi_ = std::make_unique<Mpi>();
  int already = 0;
  MPI_Initialized(&already);
  if (!already) {
    int provided = 0;
    // Only the main thread calls MPI; OpenMP threads compute between the calls.
    check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "init");
    mpi_->initialized_here = true;
  }
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
  // Nodes: the processes sharing memory, or the ids a test gives to pretend several.
  std::string node_id;
  if (const char* forced = std::getenv("VERDANT_NODE_ID")) {
    node_id = forced;
  } else {
    char name[MPI_MAX_PROCESSOR_NAME];
    int len = 0;
    MPI_Get_processor_name(name, &len);
    node_id.assign(name, static_cast<std::size_t>(len));
  }
  const auto ids = all_gather(node_id);
  std::map<std::string, int> index;
  for (const auto& id : ids) index.emplace(id, static_cast<int>(index.size()));
  nodes_ = static_cast<int>(index.size());
  node_ = index.at(node_id);
  local_rank_ = 0;
  for (int r = 0; r < rank_; ++r) local_rank_ += ids[static_cast<std::size_t>(r)] == node_id;
}

void Communicator::open_queue() {
  if (!mpi_ || mpi_->counter_window != MPI_WIN_NULL) return;
  void* base = nullptr;
  check(MPI_Win_allocate(rank_ == 0 ? sizeof(std::int64_t) : 0, sizeof(std::int64_t), MPI_INFO_NULL,
                         MPI_COMM_WORLD, &base, &mpi_->counter_window),
        "window");
  if (rank_ == 0) *static_cast<std::int64_t*>(base) = 0;
  barrier();
}

Communicator::~Communicator() {
  if (!mpi_) return;
  if (mpi_->counter_window != MPI_WIN_NULL) MPI_Win_free(&mpi_->counter_window);
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (mpi_->initialized_here && !finalized) MPI_Finalize();
}

void Communicator::sum(std::span<double> v) {
  if (!distributed() || v.empty()) return;
  check(MPI_Allreduce(MPI_IN_PLACE, v.data(), static_cast<int>(v.size()), MPI_DOUBLE, MPI_SUM,
                      MPI_COMM_WORLD),
        "allreduce");
}

void Communicator::sum(std::span<float> v) {
  if (!distributed() || v.empty()) return;
  check(MPI_Allreduce(MPI_IN_PLACE, v.data(), static_cast<int>(v.size()), MPI_FLOAT, MPI_SUM,
                      MPI_COMM_WORLD),
        "allreduce");
}

std::size_t Communicator::start_sum(std::span<float> v) {
  if (!distributed()) return 0;
  MPI_Request r = MPI_REQUEST_NULL;
  check(MPI_Iallreduce(MPI_IN_PLACE, v.data(), static_cast<int>(v.size()), MPI_FLOAT, MPI_SUM,
                       MPI_COMM_WORLD, &r),
        "iallreduce");
  mpi_->pending.push_back(r);
  return mpi_->pending.size() - 1;
}

void Communicator::finish_all() {
  if (!mpi_ || mpi_->pending.empty()) return;
  check(MPI_Waitall(static_cast<int>(mpi_->pending.size()), mpi_->pending.data(),
                    MPI_STATUSES_IGNORE),
        "wait");
  mpi_->pending.clear();
}

void Communicator::broadcast(std::vector<std::uint8_t>& bytes, int root) {
  if (!distributed()) return;
  std::uint64_t n = bytes.size();
  check(MPI_Bcast(&n, 1, MPI_UINT64_T, root, MPI_COMM_WORLD), "broadcast");
  bytes.resize(n);
  // In slices: MPI counts are ints.
  constexpr std::uint64_t kSlice = 1u << 30;
  for (std::uint64_t at = 0; at < n; at += kSlice)
    check(MPI_Bcast(bytes.data() + at, static_cast<int>(std::min(kSlice, n - at)), MPI_BYTE, root,
                    MPI_COMM_WORLD),
          "broadcast");
}

void Communicator::broadcast(std::span<float> v, int root) {
  if (!distributed() || v.empty()) return;
  check(MPI_Bcast(v.data(), static_cast<int>(v.size()), MPI_FLOAT, root, MPI_COMM_WORLD),
        "broadcast");
}

std::vector<std::string> Communicator::all_gather(const std::string& mine) {
  if (size_ <= 1 || !mpi_) return {mine};
  int len = static_cast<int>(mine.size());
  std::vector<int> lens(static_cast<std::size_t>(size_)), offsets(static_cast<std::size_t>(size_));
  check(MPI_Allgather(&len, 1, MPI_INT, lens.data(), 1, MPI_INT, MPI_COMM_WORLD), "allgather");
  int total = 0;
  for (int r = 0; r < size_; ++r) {
    offsets[static_cast<std::size_t>(r)] = total;
    total += lens[static_cast<std::size_t>(r)];
  }
  std::string all(static_cast<std::size_t>(total), '\0');
  check(MPI_Allgatherv(mine.data(), len, MPI_CHAR, all.data(), lens.data(), offsets.data(),
                       MPI_CHAR, MPI_COMM_WORLD),
        "allgather");
  std::vector<std::string> out;
  for (int r = 0; r < size_; ++r)
    out.push_back(all.substr(static_cast<std::size_t>(offsets[static_cast<std::size_t>(r)]),
                             static_cast<std::size_t>(lens[static_cast<std::size_t>(r)])));
  return out;
}

void Communicator::barrier() {
  if (distributed()) check(MPI_Barrier(MPI_COMM_WORLD), "barrier");
}

std::int64_t Communicator::fetch_add(std::int64_t increment) {
  if (!mpi_ || mpi_->counter_window == MPI_WIN_NULL) {
    static std::int64_t alone = 0;
    return std::exchange(alone, alone + increment);
  }
  std::int64_t before = 0;
  check(MPI_Win_lock(MPI_LOCK_SHARED, 0, 0, mpi_->counter_window), "lock");
  check(MPI_Fetch_and_op(&increment, &before, MPI_INT64_T, 0, 0, MPI_SUM, mpi_->counter_window),
        "fetch_and_op");
  check(MPI_Win_unlock(0, mpi_->counter_window), "unlock");
  return before;
}

void Communicator::abort(int code) {
  if (mpi_) MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);
}

#else  // without MPI: a world of one process

struct Communicator::Mpi {};

void Communicator::init(bool required) {
  if (required)
    throw SettingError("distributed",
                       "distributed training needs a build with OpenMPI (libopenmpi-dev)");
}
Communicator::~Communicator() = default;
void Communicator::sum(std::span<double>) {}
void Communicator::sum(std::span<float>) {}
std::size_t Communicator::start_sum(std::span<float>) {
  return 0;
}
void Communicator::open_queue() {}
void Communicator::finish_all() {}
void Communicator::broadcast(std::vector<std::uint8_t>&, int) {}
void Communicator::broadcast(std::span<float>, int) {}
std::vector<std::string> Communicator::all_gather(const std::string& mine) {
  return {mine};
}
void Communicator::barrier() {}
std::int64_t Communicator::fetch_add(std::int64_t increment) {
  static std::int64_t alone = 0;
  return std::exchange(alone, alone + increment);
}
void Communicator::abort(int code) {
  std::_Exit(code);
}

#endif

Communicator& Communicator::world(bool required) {
  // Destroyed at exit, which finalizes MPI (a process that exits without it fails the job).
  static std::unique_ptr<Communicator> w;
  static bool ready = false;
  if (!ready) {
    w.reset(new Communicator());
    ready = true;
    w->init(required);
  } else if (required && !w->distributed() && !launched_by_mpirun()) {
    w->init(true);
  }
  return *w;
}

}  // namespace verdant::dist
