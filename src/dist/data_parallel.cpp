#include "verdant/dist/data_parallel.hpp"

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>
#include <unordered_map>

#include "verdant/autograd/variable.hpp"
#include "verdant/core/error.hpp"
#include "verdant/version.hpp"

namespace verdant::dist {

namespace {

using Clock = std::chrono::steady_clock;

class MpiReducer : public train::Reducer {
 public:
  explicit MpiReducer(Communicator& c) : comm_(c) {}
  void sum(std::span<double> values) override { comm_.sum(values); }

 private:
  Communicator& comm_;
};

// Averages gradients over the processes, bucket by bucket.
class GradientSync : public train::TrainerCallback {
 public:
  GradientSync(Communicator& comm, nn::Module& model, DataParallelOptions o,
               std::shared_ptr<CommStats> stats)
      : comm_(comm), options_(o), stats_(std::move(stats)) {
    for (auto& [name, p] : model.named_parameters()) params_.push_back(p);
    // Reverse registration order: roughly the order backward completes the gradients.
    const auto limit = static_cast<std::int64_t>(options_.bucket_mb * 1024 * 1024 / sizeof(float));
    Bucket current;
    for (std::size_t k = params_.size(); k-- > 0;) {
      current.params.push_back(k);
      current.size += params_[k].numel();
      if (current.size >= limit) {
        buckets_.push_back(std::move(current));
        current = Bucket{};
      }
    }
    if (!current.params.empty()) buckets_.push_back(std::move(current));
    for (std::size_t b = 0; b < buckets_.size(); ++b) {
      buckets_[b].buffer.resize(static_cast<std::size_t>(buckets_[b].size));
      for (auto k : buckets_[b].params) {
        bucket_of_[params_[k].impl()] = b;
        param_index_[params_[k].impl()] = k;
      }
    }
  }

  void on_step_begin(train::Trainer&, const train::StepInfo& s) override {
    step_start_ = Clock::now();
    // This shard's share of the global mean: the averaged gradient is the whole batch's.
    scale_ = s.global_batch_size > 0 ? float(double(s.batch_size) / double(s.global_batch_size))
                                     : 1.f / float(comm_.size());
    for (auto& b : buckets_) {
      b.ready = 0;
      b.started = false;
    }
    if (options_.overlap) hook_.emplace([this](const autograd::Variable& leaf) { on_ready(leaf); });
  }

  void on_before_optimizer_step(train::Trainer&, const train::StepInfo&) override {
    hook_.reset();
    for (auto& b : buckets_)
      if (!b.started) start(b);
    const auto t = Clock::now();
    comm_.finish_all();
    stats_->allreduce_seconds += std::chrono::duration<double>(Clock::now() - t).count();
    for (auto& b : buckets_) {
      std::size_t at = 0;
      for (auto k : b.params) {
        autograd::Variable& p = params_[k];
        if (!p.grad().defined()) p.set_grad(Tensor::zeros(p.shape()));
        const auto n = static_cast<std::size_t>(p.numel());
        std::memcpy(p.grad().data<float>(), b.buffer.data() + at, n * sizeof(float));
        at += n;
      }
    }
    stats_->step_seconds += std::chrono::duration<double>(Clock::now() - step_start_).count();
    ++stats_->steps;
  }

 private:
  struct Bucket {
    std::vector<std::size_t> params;
    std::int64_t size = 0;
    std::vector<float> buffer;
    std::size_t ready = 0;
    bool started = false;
  };

  void on_ready(const autograd::Variable& leaf) {
    const auto it = bucket_of_.find(leaf.impl());
    if (it == bucket_of_.end()) return;  // not a parameter (an input that needed a gradient)
    Bucket& b = buckets_[it->second];
    if (++b.ready == b.params.size()) start(b);
  }

  void start(Bucket& b) {
    std::size_t at = 0;
    for (auto k : b.params) {
      const autograd::Variable& p = params_[k];
      const auto n = static_cast<std::size_t>(p.numel());
      if (p.grad().defined()) {
        const float* g = p.grad().data<float>();
        for (std::size_t i = 0; i < n; ++i) b.buffer[at + i] = g[i] * scale_;
      } else {
        std::fill(b.buffer.begin() + static_cast<std::ptrdiff_t>(at),
                  b.buffer.begin() + static_cast<std::ptrdiff_t>(at + n), 0.f);
      }
      at += n;
    }
    b.started = true;
    comm_.start_sum(b.buffer);
  }

  Communicator& comm_;
  DataParallelOptions options_;
  std::shared_ptr<CommStats> stats_;
  std::vector<autograd::Variable> params_;
  std::vector<Bucket> buckets_;
  std::unordered_map<const void*, std::size_t> bucket_of_, param_index_;
  std::optional<autograd::GradReadyHook> hook_;
  float scale_ = 1.f;
  Clock::time_point step_start_;
};

// What must agree across processes before training together.
std::string fingerprint(const train::TrainingContext& c) {
  std::string f = std::string("verdant ") + kVersion + "; model " + c.options.model + " with " +
                  std::to_string(c.model->num_parameters()) + " parameters;";
  for (auto& [name, p] : c.model->named_parameters()) f += " " + name + shape_str(p.shape());
  f += "; training set of " + std::to_string(c.data.train->size()) + " samples; batch " +
       std::to_string(c.options.batch_size) + "; seed " + std::to_string(c.options.seed);
  return f;
}

class DataParallel : public train::TrainingExtension {
 public:
  DataParallel(Communicator& comm, DataParallelOptions o, std::shared_ptr<CommStats> stats)
      : comm_(comm), options_(o), stats_(std::move(stats)) {}

  void attach(train::TrainingContext& c) override {
    const auto all = comm_.all_gather(fingerprint(c));
    for (int r = 1; r < comm_.size(); ++r)
      if (all[static_cast<std::size_t>(r)] != all[0])
        throw JobError("rank " + std::to_string(r) + " differs from rank 0: \"" +
                       all[static_cast<std::size_t>(r)] + "\" against \"" + all[0] + "\"");
    // Everyone starts from rank 0's weights and buffers.
    for (auto& [name, p] : c.model->named_parameters())
      comm_.broadcast(
          std::span<float>(p.value().data<float>(), static_cast<std::size_t>(p.numel())));
    for (auto& [name, b] : c.model->named_buffers())
      if (b.dtype() == DType::f32)
        comm_.broadcast(std::span<float>(b.data<float>(), static_cast<std::size_t>(b.numel())));
    c.trainer.add_callback(std::make_shared<GradientSync>(comm_, *c.model, options_, stats_));
  }

 private:
  Communicator& comm_;
  DataParallelOptions options_;
  std::shared_ptr<CommStats> stats_;
};

// The job's energy: every process's share summed, each node's machine counted once (by its
// local rank 0), CPUs and GPUs summed over the nodes; one record per node with its location.
std::vector<energy::PhaseResult> combine_energy(Communicator& comm, energy::PhaseResult& total,
                                                energy::RunInfo& info) {
  nlohmann::json mine = {{"node", comm.node()},
                         {"machine_reported", total.machine_reported},
                         {"emissions_kg", total.emissions_kg},
                         {"machine_emissions_kg", total.machine_emissions_kg},
                         {"cpu_count", info.cpu_count},
                         {"gpu_count", info.gpu_count},
                         {"where", info.carbon_description}};
  for (energy::Domain d : energy::kAllDomains) {
    mine["process"].push_back(total.process[d]);
    mine["machine"].push_back(total.machine[d]);
  }
  const auto all = comm.all_gather(mine.dump());
  std::vector<energy::PhaseResult> nodes(static_cast<std::size_t>(comm.nodes()));
  energy::Joules process, machine;
  double emissions = 0, machine_emissions = 0;
  int cpus = 0, gpus = 0;
  for (const auto& text : all) {
    const auto j = nlohmann::json::parse(text);
    const auto node = j.at("node").get<std::size_t>();
    energy::PhaseResult& n = nodes[node];
    n.name = "node " + std::to_string(node);
    n.start = total.start;
    n.end = total.end;
    n.duration_s = total.duration_s;
    n.source = total.source;
    n.measured = total.measured;
    energy::Joules p, m;
    for (energy::Domain d : energy::kAllDomains) {
      p[d] = j.at("process").at(static_cast<std::size_t>(d));
      m[d] = j.at("machine").at(static_cast<std::size_t>(d));
    }
    n.process += p;
    n.emissions_kg += j.at("emissions_kg").get<double>();
    process += p;
    emissions += j.at("emissions_kg").get<double>();
    if (j.at("machine_reported").get<bool>()) {
      n.machine = m;
      n.machine_reported = true;
      n.machine_emissions_kg = j.at("machine_emissions_kg");
      machine += m;
      machine_emissions += j.at("machine_emissions_kg").get<double>();
      cpus += j.at("cpu_count").get<int>();
      gpus += j.at("gpu_count").get<int>();
    }
    n.carbon_note = "location: " + j.at("where").get<std::string>();
  }
  total.process = process;
  total.machine = machine;
  total.machine_reported = true;
  total.emissions_kg = emissions;
  total.machine_emissions_kg = machine_emissions;
  info.cpu_count = cpus;
  info.gpu_count = gpus;
  info.machine_reason = "the job's " + std::to_string(comm.nodes()) +
                        " node(s), each machine reported once by its local rank 0";
  return nodes;
}

}  // namespace

std::shared_ptr<CommStats> make_data_parallel(train::TrainingOptions& o, DataParallelOptions dp) {
  auto stats = std::make_shared<CommStats>();
  Communicator& comm = Communicator::world();
  if (!comm.distributed()) return stats;
  if (o.batch_size < comm.size())
    throw JobError("batch_size " + std::to_string(o.batch_size) + " is smaller than the " +
                   std::to_string(comm.size()) + " processes (it is the global batch)");
  o.shard = comm.rank();
  o.shards = comm.size();
  o.reducer = std::make_shared<MpiReducer>(comm);
  o.write_outputs = comm.rank() == 0;
  // Each node's machine is reported by its local rank 0 (the energy module reads this).
  ::setenv("VERDANT_LOCAL_RANK", std::to_string(comm.local_rank()).c_str(), 1);
  o.energy.combine = [&comm](energy::PhaseResult& total, energy::RunInfo& info) {
    return combine_energy(comm, total, info);
  };
  // First, so that every later hook (a recipe's masks, RigL's growth) sees averaged gradients.
  o.extensions.insert(o.extensions.begin(), std::make_shared<DataParallel>(comm, dp, stats));
  return stats;
}

}  // namespace verdant::dist
