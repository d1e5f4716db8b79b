#pragma once
// The processes of a distributed job, through OpenMPI. This module owns every MPI call; no
// other module includes mpi.h. A program started by mpirun (or asked with `--distributed`)
// joins the job on first use; without MPI in the build, or outside mpirun, the world is one
// process and every collective is the identity.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace verdant::dist {

// True when this build has MPI.
bool built_with_mpi();
// True when the environment says mpirun (OpenMPI) started this process.
bool launched_by_mpirun();

class Communicator {
 public:
  // The job's world. `required`: fail (SettingError "distributed ...") when MPI is not
  // available, instead of running alone.
  static Communicator& world(bool required = false);
  ~Communicator();

  bool distributed() const { return size_ > 1; }
  int rank() const { return rank_; }
  int size() const { return size_; }
  // Processes on one machine form a node (MPI's shared-memory split, or VERDANT_NODE_ID to
  // pretend nodes on one machine). local_rank 0 of each node reports that node's machine.
  int node() const { return node_; }
  int nodes() const { return nodes_; }
  int local_rank() const { return local_rank_; }

  // Sums over all processes, in place. Every process calls the same collectives in order.
  void sum(std::span<double> values);
  void sum(std::span<float> values);
  // Starts a sum of `values` (kept alive and untouched until finished) and returns its id.
  std::size_t start_sum(std::span<float> values);
  void finish_all();  // waits for every started sum
  // Root's bytes to everyone (`bytes` is resized on the others).
  void broadcast(std::vector<std::uint8_t>& bytes, int root = 0);
  void broadcast(std::span<float> values, int root = 0);
  // Every process's text, in rank order, on every process.
  std::vector<std::string> all_gather(const std::string& mine);
  void barrier();
  // A counter held by rank 0 that every process draws work items from: open_queue() (all
  // processes, together) sets it to 0; fetch_add atomically adds and returns the value before.
  void open_queue();
  std::int64_t fetch_add(std::int64_t increment);
  // Ends the whole job now with `code` (one process's error must not leave the others
  // waiting in a collective).
  [[noreturn]] void abort(int code);

 private:
  Communicator() = default;
  void init(bool required);
  struct Mpi;
  std::unique_ptr<Mpi> mpi_;
  int rank_ = 0, size_ = 1, node_ = 0, nodes_ = 1, local_rank_ = 0;
};

}  // namespace verdant::dist
