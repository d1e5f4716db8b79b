// Edge runtime benchmark (issue 5): mlp and lenet5 at batch 1 on one thread, our fp32, int8
// and int8 with 90% sparsity (pruned by magnitude here: unstructured, stored as CSR, and in
// 4x4 blocks, stored block-sparse), and the PyTorch peer
// (bench/edge_peer.py, eager fp32 and dynamic int8) in the same invocation, interleaved
// round by round. Reports medians over rounds of wall time and of process CPU time per
// inference, ratios, the stripped size of verdant-edge, its peak RSS running lenet5, and
// energy per 1,000 inferences (estimated: CPU time x per-core power). The int8 variants run
// again on each other kernel table this CPU supports, with the active table's speed-up over it.
// `edge_bench --crossover` measures instead where each table's sparse kernels stop paying:
// the mlp at rising sparsity through the CSR and 4x4-block kernels (forced, whatever the
// table's break-even) against the same weights as dense int8, interleaved; the tables'
// csr_max_density and bsr_max_density are set from it.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "../src/edge/power.hpp"
#include "timing.hpp"
#include "verdant/runtime/kernels.hpp"
#include "verdant/runtime/model.hpp"
#include "verdant/runtime/vdm_writer.hpp"

using namespace verdant;
using runtime::LayerSpec;
using runtime::ModelSpec;

using verdant::bench::median;

namespace {

std::mt19937 rng(1234);

LayerSpec dense(vdm::LayerKind kind, std::uint32_t fan_in, std::uint32_t out, std::uint32_t k,
                bool relu) {
  LayerSpec s;
  s.kind = kind;
  s.out_c = out;
  s.kernel_h = s.kernel_w = k;
  // Kaiming-uniform like the engine's default initialisation.
  const float b = std::sqrt(6.f / static_cast<float>(fan_in));
  std::uniform_real_distribution<float> d(-b, b);
  s.weight.resize(std::size_t{out} * fan_in);
  for (float& w : s.weight) w = d(rng);
  s.bias.assign(out, 0.01f);
  s.activation = relu ? vdm::Activation::relu : vdm::Activation::none;
  return s;
}

LayerSpec flatten() {
  LayerSpec s;
  s.kind = vdm::LayerKind::flatten;
  s.encoding = vdm::Encoding::none;
  return s;
}

ModelSpec mlp() {
  ModelSpec m;
  m.input_c = 1, m.input_h = 28, m.input_w = 28;
  m.layers = {flatten(), dense(vdm::LayerKind::linear, 784, 300, 1, true),
              dense(vdm::LayerKind::linear, 300, 100, 1, true),
              dense(vdm::LayerKind::linear, 100, 10, 1, false)};
  return m;
}

ModelSpec lenet5() {
  ModelSpec m;
  m.input_c = 1, m.input_h = 28, m.input_w = 28;
  LayerSpec c1 = dense(vdm::LayerKind::conv2d, 25, 20, 5, true);
  LayerSpec c2 = dense(vdm::LayerKind::conv2d, 500, 50, 5, true);
  for (LayerSpec* c : {&c1, &c2}) c->pool = vdm::Pool::max, c->pool_size = 2, c->pool_stride = 2;
  m.layers = {c1, c2, flatten(), dense(vdm::LayerKind::linear, 800, 500, 1, true),
              dense(vdm::LayerKind::linear, 500, 10, 1, false)};
  return m;
}

void prune(ModelSpec& m, double fraction) {
  for (LayerSpec& s : m.layers) {
    if (s.weight.empty()) continue;
    std::vector<float> mag(s.weight.size());
    for (std::size_t i = 0; i < mag.size(); ++i) mag[i] = std::fabs(s.weight[i]);
    const auto cut = static_cast<std::size_t>(fraction * static_cast<double>(mag.size()));
    std::nth_element(mag.begin(), mag.begin() + static_cast<std::ptrdiff_t>(cut), mag.end());
    const float thr = mag[cut];
    for (float& w : s.weight)
      if (std::fabs(w) < thr) w = 0.f;
  }
}

// Block-structured magnitude pruning: zeroes the `fraction` of 4x4 blocks (of the [out][K]
// weight matrix) with the smallest L2 norm, the pattern the runtime's int8_bsr kernel runs.
void prune_blocks(ModelSpec& m, double fraction) {
  constexpr std::size_t B = vdm::kBlock;
  for (LayerSpec& s : m.layers) {
    if (s.weight.empty()) continue;
    const std::size_t rows = s.out_c, k = s.weight.size() / rows;
    const std::size_t brows = (rows + B - 1) / B, bcols = (k + B - 1) / B;
    std::vector<float> norm(brows * bcols, 0.f);
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t c = 0; c < k; ++c)
        norm[(r / B) * bcols + c / B] += s.weight[r * k + c] * s.weight[r * k + c];
    std::vector<float> sorted = norm;
    const auto cut = static_cast<std::size_t>(fraction * static_cast<double>(sorted.size()));
    std::nth_element(sorted.begin(), sorted.begin() + static_cast<std::ptrdiff_t>(cut),
                     sorted.end());
    const float thr = sorted[cut];
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t c = 0; c < k; ++c)
        if (norm[(r / B) * bcols + c / B] < thr) s.weight[r * k + c] = 0.f;
  }
}

std::vector<float> normal_inputs(std::size_t n) {
  std::normal_distribution<float> d(0.f, 1.f);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

// fp32, int8 or int8 CSR bytes of a spec, calibrated on random normalised inputs.
std::vector<std::uint8_t> build(ModelSpec m, vdm::Encoding enc, const std::vector<float>& cal,
                                std::size_t cal_n) {
  std::string err;
  if (enc != vdm::Encoding::f32) {
    auto f = runtime::write_vdm(m, &err);
    auto model = runtime::Model::load_buffer(f.data(), f.size(), &err);
    std::vector<float> mins(m.layers.size(), 0.f), maxs(m.layers.size(), 0.f);
    const std::size_t n = model->input_size();
    m.input_min = m.input_max = 0.f;
    for (std::size_t i = 0; i < cal_n; ++i) {
      model->run_observe(cal.data() + i * n, n, mins.data(), maxs.data());
      for (std::size_t j = 0; j < n; ++j) {
        m.input_min = std::min(m.input_min, cal[i * n + j]);
        m.input_max = std::max(m.input_max, cal[i * n + j]);
      }
    }
    for (std::size_t i = 0; i < m.layers.size(); ++i) {
      m.layers[i].out_min = mins[i];
      m.layers[i].out_max = maxs[i];
      if (m.layers[i].kind != vdm::LayerKind::flatten) m.layers[i].encoding = enc;
    }
    m.layers.back().quantize_output = false;
  }
  auto bytes = runtime::write_vdm(m, &err);
  if (bytes.empty()) {
    std::fprintf(stderr, "edge_bench: %s\n", err.c_str());
    std::exit(1);
  }
  return bytes;
}

double cpu_seconds() {
  return edge::process_cpu_seconds();
}

struct Variant {
  std::string model, name;
  const runtime::KernelTable* kernels = nullptr;  // the active table when nullptr
  // The name, with the table when it is not the active one.
  std::string label() const { return kernels ? name + " [" + kernels->isa + "]" : name; }
  std::vector<std::uint8_t> bytes;
  std::unique_ptr<runtime::Model> m;
  int iters = 0;
  std::vector<double> wall_us, cpu_us;
};

std::string run_capture(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return out;
  char buf[4096];
  std::size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  pclose(p);
  return out;
}

double json_number(const std::string& json, const std::string& key) {
  const auto at = json.find("\"" + key + "\":");
  if (at == std::string::npos) return NAN;
  return std::strtod(json.c_str() + at + key.size() + 3, nullptr);
}

// The sparse kernels forced against dense int8 on the same pruned mlp, per table and sparsity.
int run_crossover(const std::vector<float>& cal, int rounds, int iters) {
  const auto x = normal_inputs(784);
  std::vector<float> out(10);
  std::printf("edge_bench --crossover: mlp int8, one thread, batch 1, medians of %d rounds\n",
              rounds);
  std::printf("%-12s %-8s %8s %12s %10s %14s\n", "table", "layout", "density", "sparse us",
              "dense us", "sparse/dense");
  for (const runtime::KernelTable* table : runtime::supported_kernel_tables()) {
    if (table == &runtime::reference_kernels()) continue;
    runtime::KernelTable forced = *table;
    forced.csr_max_density = forced.bsr_max_density = 1.0;
    for (const bool blocks : {false, true})
      for (const double sparsity : {0.5, 0.7, 0.8, 0.9, 0.95, 0.97, 0.98, 0.99}) {
        rng.seed(1234);
        ModelSpec m = mlp();
        blocks ? prune_blocks(m, sparsity) : prune(m, sparsity);
        const auto sparse_bytes =
            build(m, blocks ? vdm::Encoding::int8_bsr : vdm::Encoding::int8_csr, cal, 64);
        const auto dense_bytes = build(m, vdm::Encoding::int8, cal, 64);
        std::string err;
        auto sparse = runtime::Model::load_buffer(sparse_bytes.data(), sparse_bytes.size(), &err,
                                                  {.kernels = &forced});
        auto dense = runtime::Model::load_buffer(dense_bytes.data(), dense_bytes.size(), &err,
                                                 {.kernels = table});
        if (sparse == nullptr || dense == nullptr) {
          std::fprintf(stderr, "edge_bench: %s\n", err.c_str());
          return 1;
        }
        std::vector<double> sparse_us, dense_us;
        for (int r = 0; r < rounds; ++r)
          for (runtime::Model* model : {sparse.get(), dense.get()}) {
            const auto t0 = std::chrono::steady_clock::now();
            for (int i = 0; i < iters; ++i) model->run(x.data(), x.size(), out.data(), out.size());
            (model == sparse.get() ? sparse_us : dense_us)
                .push_back(
                    std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0)
                        .count() /
                    iters);
          }
        std::printf("%-12s %-8s %8.3f %12.2f %10.2f %13.2fx\n", table->isa, blocks ? "4x4" : "CSR",
                    1.0 - sparsity, median(sparse_us), median(dense_us),
                    median(sparse_us) / median(dense_us));
      }
    std::printf("%-12s break-even in use: CSR below density %.4f, 4x4 blocks below %.2f\n",
                table->isa, table->csr_max_density, table->bsr_max_density);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = 7, iters_mlp = 2000, iters_lenet = 300;
  bool peer = true, crossover = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--rounds") && i + 1 < argc)
      rounds = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--iters-mlp") && i + 1 < argc)
      iters_mlp = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--iters-lenet5") && i + 1 < argc)
      iters_lenet = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--no-peer"))
      peer = false;
    else if (!std::strcmp(argv[i], "--crossover"))
      crossover = true;
    else {
      std::fprintf(stderr,
                   "usage: edge_bench [--rounds R] [--iters-mlp N] [--iters-lenet5 N] [--no-peer] "
                   "[--crossover]\n");
      return 2;
    }
  }
  const auto cal = normal_inputs(64 * 784);
  if (crossover) return run_crossover(cal, rounds, iters_mlp);
  std::vector<Variant> vs;
  auto add = [&](const std::string& model, const std::string& name, std::vector<std::uint8_t> b,
                 int iters, const runtime::KernelTable* kernels = nullptr) {
    Variant v;
    v.model = model;
    v.name = name;
    v.kernels = kernels;
    v.bytes = std::move(b);
    std::string err;
    v.m = runtime::Model::load_buffer(v.bytes.data(), v.bytes.size(), &err, {.kernels = kernels});
    v.iters = iters;
    vs.push_back(std::move(v));
  };
  ModelSpec mlp_sparse = mlp(), lenet_sparse = lenet5();
  rng.seed(1234);
  ModelSpec mlp_dense = mlp();
  prune(mlp_sparse, 0.9);
  prune(lenet_sparse, 0.9);
  ModelSpec lenet_dense = lenet5();
  ModelSpec mlp_blocks = mlp_dense, lenet_blocks = lenet_dense;
  prune_blocks(mlp_blocks, 0.9);
  prune_blocks(lenet_blocks, 0.9);
  add("mlp", "fp32", build(mlp_dense, vdm::Encoding::f32, cal, 64), iters_mlp);
  add("mlp", "int8", build(mlp_dense, vdm::Encoding::int8, cal, 64), iters_mlp);
  add("mlp", "int8 90% sparse (CSR)", build(mlp_sparse, vdm::Encoding::int8_csr, cal, 64),
      iters_mlp);
  add("mlp", "int8 90% sparse (4x4 blk)", build(mlp_blocks, vdm::Encoding::int8_bsr, cal, 64),
      iters_mlp);
  add("lenet5", "fp32", build(lenet_dense, vdm::Encoding::f32, cal, 64), iters_lenet);
  add("lenet5", "int8", build(lenet_dense, vdm::Encoding::int8, cal, 64), iters_lenet);
  add("lenet5", "int8 90% sparse (CSR)", build(lenet_sparse, vdm::Encoding::int8_csr, cal, 64),
      iters_lenet);
  add("lenet5", "int8 90% sparse (4x4 blk)", build(lenet_blocks, vdm::Encoding::int8_bsr, cal, 64),
      iters_lenet);
  // The int8 variants again on each other table this CPU runs, so that one invocation
  // compares the tables (AVX-512 VNNI against AVX2 where both exist).
  const runtime::KernelTable& active = runtime::active_kernels();
  const std::size_t on_active = vs.size();
  for (const runtime::KernelTable* t : runtime::supported_kernel_tables()) {
    if (t == &active) continue;
    for (std::size_t i = 0; i < on_active; ++i)
      if (vs[i].name != "fp32") add(vs[i].model, vs[i].name, vs[i].bytes, vs[i].iters, t);
  }

  const std::string peer_script = std::string(VERDANT_SOURCE_DIR) + "/bench/edge_peer.py";
  std::map<std::string, std::vector<double>> peer_wall, peer_cpu;
  std::string torch_version;
  const auto x = normal_inputs(784);
  std::vector<float> out(10);
  std::string tables;
  for (const runtime::KernelTable* t : runtime::supported_kernel_tables())
    tables += std::string(tables.empty() ? "" : ", ") + t->isa;
  std::printf(
      "edge_bench: %d rounds, kernels %s (tables this CPU runs: %s; VERDANT_RUNTIME_ISA "
      "picks one), one thread, batch 1\n",
      rounds, active.isa, tables.c_str());
  for (int r = 0; r < rounds; ++r) {
    for (Variant& v : vs) {
      for (int i = 0; i < 20; ++i) v.m->run(x.data(), x.size(), out.data(), out.size());
      const double c0 = cpu_seconds();
      const auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < v.iters; ++i) v.m->run(x.data(), x.size(), out.data(), out.size());
      const double wall =
          std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
      v.wall_us.push_back(wall / v.iters);
      v.cpu_us.push_back((cpu_seconds() - c0) * 1e6 / v.iters);
    }
    if (peer) {
      const std::string j =
          run_capture("OMP_NUM_THREADS=1 /usr/bin/python3 " + peer_script + " --iters-mlp " +
                      std::to_string(iters_mlp) + " --iters-lenet5 " + std::to_string(iters_lenet) +
                      " 2>/dev/null");
      for (const char* k : {"mlp_fp32", "mlp_dynint8", "lenet5_fp32"}) {
        const double us = json_number(j, std::string(k) + "_us");
        const double cpu = json_number(j, std::string(k) + "_cpu_s");
        const int it = std::string(k).rfind("lenet5", 0) == 0 ? iters_lenet : iters_mlp;
        if (!std::isnan(us)) {
          peer_wall[k].push_back(us);
          peer_cpu[k].push_back(cpu * 1e6 / it);
        }
      }
      const auto at = j.find("\"torch\": \"");
      if (at != std::string::npos)
        torch_version = j.substr(at + 10, j.find('"', at + 10) - at - 10);
    }
  }

  const edge::CorePower power = edge::core_power();
  std::printf("\n%-7s %-36s %10s %10s %9s %9s %12s %10s\n", "model", "variant", "wall us", "cpu us",
              "vs fp32", "vs torch", "J/1000 inf", "file KB");
  auto row = [&](const std::string& model, const std::string& name, double wall, double cpu,
                 double fp32_wall, double torch_wall, double kb) {
    std::printf("%-7s %-36s %10.2f %10.2f %8.2fx %8.2fx %12.4f %10s\n", model.c_str(), name.c_str(),
                wall, cpu, fp32_wall / wall, torch_wall / wall, cpu * 1e-6 * power.watts * 1000.0,
                kb > 0 ? std::to_string(static_cast<int>(kb + 0.5)).c_str() : "-");
  };
  for (const char* model : {"mlp", "lenet5"}) {
    double fp32 = NAN;
    for (Variant& v : vs)
      if (v.model == model && v.name == "fp32" && v.kernels == nullptr) fp32 = median(v.wall_us);
    const double torch = median(peer_wall[std::string(model) + "_fp32"]);
    for (Variant& v : vs)
      if (v.model == model)
        row(model, v.label(), median(v.wall_us), median(v.cpu_us), fp32, torch,
            v.bytes.size() / 1024.0);
    if (peer) {
      row(model, "PyTorch fp32 eager", torch, median(peer_cpu[std::string(model) + "_fp32"]), fp32,
          torch, 0);
      if (std::string(model) == "mlp")
        row(model, "PyTorch dynamic int8", median(peer_wall["mlp_dynint8"]),
            median(peer_cpu["mlp_dynint8"]), fp32, torch, 0);
    }
  }
  // The active table's speed-up over each other table, per int8 variant.
  for (const Variant& v : vs) {
    if (v.kernels == nullptr) continue;
    for (const Variant& a : vs)
      if (a.kernels == nullptr && a.model == v.model && a.name == v.name)
        std::printf("%-7s %-36s %s over %s: %.2fx\n", v.model.c_str(), v.name.c_str(), active.isa,
                    v.kernels->isa, median(v.wall_us) / median(a.wall_us));
  }
  std::printf("(medians over %d rounds; ratios are speed-ups of wall time; PyTorch %s, 1 thread)\n",
              rounds, torch_version.empty() ? "not run" : torch_version.c_str());
  std::printf("energy per 1,000 inferences: %s\n", power.source.c_str());

  // verdant-edge itself: stripped size and peak RSS running lenet5 (int8 and fp32).
  namespace fs = std::filesystem;
  const fs::path tmp =
      fs::temp_directory_path() / ("verdant_edge_bench_" + std::to_string(getpid()));
  fs::create_directories(tmp);
  const std::string exe = VERDANT_EDGE_EXE;
  const std::string stripped = (tmp / "verdant-edge").string();
  std::string cmd = "strip -o " + stripped + " " + exe;
  if (std::system(cmd.c_str()) == 0)
    std::printf("verdant-edge stripped: %llu bytes (%.1f KB; target <= 300 KB)\n",
                static_cast<unsigned long long>(fs::file_size(stripped)),
                fs::file_size(stripped) / 1024.0);
  {
    std::ofstream in(tmp / "x.f32", std::ios::binary);
    for (int i = 0; i < 16; ++i) in.write(reinterpret_cast<const char*>(x.data()), 784 * 4);
  }
  for (Variant& v : vs) {
    if (v.model != "lenet5" || v.kernels != nullptr) continue;
    const fs::path p = tmp / "lenet5.vdm";
    std::ofstream(p, std::ios::binary)
        .write(reinterpret_cast<const char*>(v.bytes.data()),
               static_cast<std::streamsize>(v.bytes.size()));
    const std::string o = run_capture(stripped + " run " + p.string() + " --input " +
                                      (tmp / "x.f32").string() + " --repeat 50 2>&1");
    const auto at = o.find("peak resident memory: ");
    const auto lat = o.find("latency per inference: median ");
    std::printf(
        "verdant-edge run lenet5 %-22s peak RSS %s KB (target <= 8192 KB), median latency %s us\n",
        v.name.c_str(),
        at == std::string::npos ? "?" : o.substr(at + 22, o.find(' ', at + 22) - at - 22).c_str(),
        lat == std::string::npos ? "?"
                                 : o.substr(lat + 30, o.find(' ', lat + 30) - lat - 30).c_str());
  }
  fs::remove_all(tmp);
  return 0;
}
