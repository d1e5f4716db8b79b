// The only file that includes oneDNN: convolution primitives on our plain buffers.
#include <omp.h>

#include <array>
#include <atomic>
#include <cstdlib>
#include <map>
#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>
#include <unordered_map>

#include "verdant/core/error.hpp"
#include "verdant/kernels/conv.hpp"
#include "verdant/kernels/isa.hpp"

namespace verdant::kernels {

namespace {

using dnnl::memory;
using tag = memory::format_tag;

ConvPath path_from_env() {
  const char* v = std::getenv("VERDANT_CONV");
  if (v == nullptr || *v == '\0' || std::string(v) == "dnnl") return ConvPath::dnnl;
  if (std::string(v) == "im2col") return ConvPath::im2col;
  throw Error("VERDANT_CONV must be dnnl or im2col, got '" + std::string(v) + "'");
}

// -1: not read yet.
std::atomic<int> g_path{-1};

enum class Direction : std::int64_t { forward, backward_data, backward_weights };

// Everything that selects a primitive. The thread count is part of it because oneDNN sizes
// its work split (and scratchpad) for omp_get_max_threads() at creation time, and
// set_num_threads (--threads) may change it between calls.
using Key = std::array<std::int64_t, 17>;

Key make_key(Direction dir, const ConvGeometry& g, std::int64_t oc, std::int64_t groups,
             bool bias) {
  return {static_cast<std::int64_t>(dir),
          g.batch,
          g.channels,
          g.height,
          g.width,
          oc,
          g.kernel_h,
          g.kernel_w,
          g.stride_h,
          g.stride_w,
          g.pad_h,
          g.pad_w,
          g.dilation_h,
          g.dilation_w,
          groups,
          bias ? 1 : 0,
          omp_get_max_threads()};
}

struct Descs {
  memory::desc src, weights, bias, dst;
  memory::dims strides, dilates, pad_l, pad_r;
};

Descs descs(const ConvGeometry& g, std::int64_t oc, std::int64_t groups) {
  Descs d;
  const auto f32 = memory::data_type::f32;
  d.src = memory::desc({g.batch, g.channels, g.height, g.width}, f32, tag::nchw);
  // [OC, C/G, KH, KW] is byte for byte goihw with dims [G, OC/G, C/G, KH, KW].
  d.weights = groups == 1
                  ? memory::desc({oc, g.channels, g.kernel_h, g.kernel_w}, f32, tag::oihw)
                  : memory::desc({groups, oc / groups, g.channels / groups, g.kernel_h, g.kernel_w},
                                 f32, tag::goihw);
  d.bias = memory::desc({oc}, f32, tag::x);
  d.dst = memory::desc({g.batch, oc, g.out_h(), g.out_w()}, f32, tag::nchw);
  d.strides = {g.stride_h, g.stride_w};
  d.dilates = {g.dilation_h - 1, g.dilation_w - 1};  // oneDNN counts the gaps
  d.pad_l = {g.pad_h, g.pad_w};
  // oneDNN checks out = (in + pad_l + pad_r - span) / stride + 1 with the same floor as
  // ours, so the symmetric padding always fits; the right cells that floor drops go unread.
  d.pad_r = {g.pad_h, g.pad_w};
  return d;
}

dnnl::convolution_forward::primitive_desc forward_pd(const dnnl::engine& eng, const Descs& d,
                                                     bool bias) {
  using fwd = dnnl::convolution_forward;
  const auto pk = dnnl::prop_kind::forward_training;
  const auto alg = dnnl::algorithm::convolution_direct;
  auto desc =
      bias ? fwd::desc(pk, alg, d.src, d.weights, d.bias, d.dst, d.strides, d.dilates, d.pad_l,
                       d.pad_r)
           : fwd::desc(pk, alg, d.src, d.weights, d.dst, d.strides, d.dilates, d.pad_l, d.pad_r);
  return fwd::primitive_desc(desc, eng);
}

dnnl::primitive create(const dnnl::engine& eng, Direction dir, const ConvGeometry& g,
                       std::int64_t oc, std::int64_t groups, bool bias) {
  const Descs d = descs(g, oc, groups);
  const auto alg = dnnl::algorithm::convolution_direct;
  switch (dir) {
    case Direction::forward:
      return dnnl::convolution_forward(forward_pd(eng, d, bias));
    case Direction::backward_data: {
      using bwd = dnnl::convolution_backward_data;
      bwd::desc desc(alg, d.src, d.weights, d.dst, d.strides, d.dilates, d.pad_l, d.pad_r);
      return bwd(bwd::primitive_desc(desc, eng, forward_pd(eng, d, false)));
    }
    case Direction::backward_weights: {
      using bwd = dnnl::convolution_backward_weights;
      auto desc =
          bias ? bwd::desc(alg, d.src, d.weights, d.bias, d.dst, d.strides, d.dilates, d.pad_l,
                           d.pad_r)
               : bwd::desc(alg, d.src, d.weights, d.dst, d.strides, d.dilates, d.pad_l, d.pad_r);
      return bwd(bwd::primitive_desc(desc, eng, forward_pd(eng, d, bias)));
    }
  }
  throw Error("conv2d: unknown oneDNN direction");
}

// One engine and stream for the process, and our own primitive cache in front of oneDNN's:
// a hit is one map lookup, where oneDNN's cache would still rebuild the descriptors and
// hash them on every call.
class Context {
 public:
  // Runs the primitive for `key` (creating it on first use) on the given buffers.
  void run(Direction dir, const ConvGeometry& g, std::int64_t oc, std::int64_t groups, bool bias,
           const std::unordered_map<int, memory::desc>& args_desc,
           const std::unordered_map<int, void*>& handles) {
    // One stream and library-managed scratchpads: executions are serialized. Verdant runs
    // one training step at a time, so the lock is uncontended.
    std::lock_guard lock(mu_);
    const Key key = make_key(dir, g, oc, groups, bias);
    auto it = cache_.find(key);
    if (it == cache_.end()) {
      // Shapes are few in training (one per layer, plus a last partial batch), but an
      // inference server may see many batch sizes: bound the memory the cache holds.
      if (cache_.size() >= kMaxEntries) cache_.clear();
      it = cache_.emplace(key, create(engine_, dir, g, oc, groups, bias)).first;
    }
    std::unordered_map<int, memory> args;
    for (const auto& [arg, md] : args_desc) args.emplace(arg, memory(md, engine_, handles.at(arg)));
    it->second.execute(stream_, args);
    stream_.wait();
  }

 private:
  static constexpr std::size_t kMaxEntries = 256;
  dnnl::engine engine_{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream_{engine_};
  std::mutex mu_;
  std::map<Key, dnnl::primitive> cache_;
};

Context& context() {
  static Context c;
  return c;
}

// Runs f, turning a oneDNN failure into one Error that names the direction and the shapes.
template <typename F>
void guarded(const char* what, const ConvGeometry& g, std::int64_t oc, std::int64_t groups, F&& f) {
  try {
    f();
  } catch (const dnnl::error& e) {
    throw Error(std::string("conv2d: oneDNN ") + what + " failed for input [" +
                std::to_string(g.batch) + ", " + std::to_string(g.channels) + ", " +
                std::to_string(g.height) + ", " + std::to_string(g.width) + "], weight [" +
                std::to_string(oc) + ", " + std::to_string(g.channels / groups) + ", " +
                std::to_string(g.kernel_h) + ", " + std::to_string(g.kernel_w) + "]: " + e.what());
  }
}

void* mut(const float* p) {
  return const_cast<float*>(p);
}

}  // namespace

ConvPath conv_path() {
  int p = g_path.load(std::memory_order_relaxed);
  if (p < 0) {
    p = static_cast<int>(path_from_env());
    int expected = -1;
    if (!g_path.compare_exchange_strong(expected, p)) p = expected;  // set meanwhile
  }
  return static_cast<ConvPath>(p);
}

void set_conv_path(ConvPath path) {
  g_path.store(static_cast<int>(path));
}

void conv2d_forward_dnnl(const ConvGeometry& g, std::int64_t out_channels, std::int64_t groups,
                         const float* x, const float* w, const float* bias, float* y) {
  guarded("forward", g, out_channels, groups, [&] {
    const Descs d = descs(g, out_channels, groups);
    std::unordered_map<int, memory::desc> md{
        {DNNL_ARG_SRC, d.src}, {DNNL_ARG_WEIGHTS, d.weights}, {DNNL_ARG_DST, d.dst}};
    std::unordered_map<int, void*> h{
        {DNNL_ARG_SRC, mut(x)}, {DNNL_ARG_WEIGHTS, mut(w)}, {DNNL_ARG_DST, y}};
    if (bias) {
      md.emplace(DNNL_ARG_BIAS, d.bias);
      h.emplace(DNNL_ARG_BIAS, mut(bias));
    }
    context().run(Direction::forward, g, out_channels, groups, bias != nullptr, md, h);
  });
}

void conv2d_backward_data_dnnl(const ConvGeometry& g, std::int64_t out_channels,
                               std::int64_t groups, const float* w, const float* dy, float* dx) {
  guarded("backward-data", g, out_channels, groups, [&] {
    const Descs d = descs(g, out_channels, groups);
    context().run(
        Direction::backward_data, g, out_channels, groups, false,
        {{DNNL_ARG_DIFF_SRC, d.src}, {DNNL_ARG_WEIGHTS, d.weights}, {DNNL_ARG_DIFF_DST, d.dst}},
        {{DNNL_ARG_DIFF_SRC, dx}, {DNNL_ARG_WEIGHTS, mut(w)}, {DNNL_ARG_DIFF_DST, mut(dy)}});
  });
}

void conv2d_backward_weights_dnnl(const ConvGeometry& g, std::int64_t out_channels,
                                  std::int64_t groups, const float* x, const float* dy, float* dw,
                                  float* dbias) {
  guarded("backward-weights", g, out_channels, groups, [&] {
    const Descs d = descs(g, out_channels, groups);
    std::unordered_map<int, memory::desc> md{
        {DNNL_ARG_SRC, d.src}, {DNNL_ARG_DIFF_WEIGHTS, d.weights}, {DNNL_ARG_DIFF_DST, d.dst}};
    std::unordered_map<int, void*> h{
        {DNNL_ARG_SRC, mut(x)}, {DNNL_ARG_DIFF_WEIGHTS, dw}, {DNNL_ARG_DIFF_DST, mut(dy)}};
    if (dbias) {
      md.emplace(DNNL_ARG_DIFF_BIAS, d.bias);
      h.emplace(DNNL_ARG_DIFF_BIAS, dbias);
    }
    context().run(Direction::backward_weights, g, out_channels, groups, dbias != nullptr, md, h);
  });
}

std::string conv_description() {
  if (conv_path() == ConvPath::im2col) return "convolutions im2col + dense sgemm (VERDANT_CONV)";
  const char* isa = "baseline";
  switch (dnnl_get_effective_cpu_isa()) {
    case dnnl_cpu_isa_sse41:
      isa = "sse4.1";
      break;
    case dnnl_cpu_isa_avx:
      isa = "avx";
      break;
    case dnnl_cpu_isa_avx2:
      isa = "avx2";
      break;
    case dnnl_cpu_isa_avx2_vnni:
      isa = "avx2_vnni";
      break;
    case dnnl_cpu_isa_avx512_core:
      isa = "avx512_core";
      break;
    case dnnl_cpu_isa_avx512_core_vnni:
      isa = "avx512_core_vnni";
      break;
    case dnnl_cpu_isa_avx512_core_bf16:
      isa = "avx512_core_bf16";
      break;
    case dnnl_cpu_isa_avx512_core_amx:
      isa = "avx512_core_amx";
      break;
    default:
      break;
  }
  const dnnl_version_t* v = dnnl_version();
  return "convolutions oneDNN " + std::to_string(v->major) + "." + std::to_string(v->minor) + " (" +
         isa + "; its sgemm under our im2col per image at stride 1)";
}

}  // namespace verdant::kernels
