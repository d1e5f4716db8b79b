#pragma once
// Small models and a plain double-precision float reference for the runtime tests.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "verdant/runtime/model.hpp"
#include "verdant/runtime/vdm_writer.hpp"

namespace verdant::runtime::testing {

inline std::vector<float> random_vec(std::size_t n, float lo, float hi, std::uint32_t seed) {
  std::mt19937 g(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = d(g);
  return v;
}

// `n` model inputs of `size` values in [0, 1), each from its own seed.
inline std::vector<std::vector<float>> random_inputs(std::size_t n, std::size_t size) {
  std::vector<std::vector<float>> v;
  for (std::size_t i = 0; i < n; ++i) v.push_back(random_vec(size, 0.f, 1.f, 100 + i));
  return v;
}

inline LayerSpec linear(std::uint32_t in, std::uint32_t out, bool relu, std::uint32_t seed) {
  LayerSpec s;
  s.kind = vdm::LayerKind::linear;
  s.out_c = out;
  const float b = 1.f / std::sqrt(static_cast<float>(in));
  s.weight = random_vec(std::size_t{in} * out, -b, b, seed);
  s.bias = random_vec(out, -b, b, seed + 1);
  s.activation = relu ? vdm::Activation::relu : vdm::Activation::none;
  return s;
}

inline LayerSpec conv(std::uint32_t in_c, std::uint32_t out_c, std::uint32_t k,
                      std::uint32_t stride, std::uint32_t pad, vdm::Pool pool, std::uint32_t seed) {
  LayerSpec s;
  s.kind = vdm::LayerKind::conv2d;
  s.out_c = out_c;
  s.kernel_h = s.kernel_w = k;
  s.stride = stride;
  s.padding = pad;
  s.pool = pool;
  s.pool_size = pool == vdm::Pool::none ? 0 : 2;
  s.pool_stride = pool == vdm::Pool::none ? 0 : 2;
  const float b = 1.f / std::sqrt(static_cast<float>(in_c * k * k));
  s.weight = random_vec(std::size_t{out_c} * in_c * k * k, -b, b, seed);
  s.bias = random_vec(out_c, -b, b, seed + 1);
  s.activation = vdm::Activation::relu;
  return s;
}

inline LayerSpec flatten() {
  LayerSpec s;
  s.kind = vdm::LayerKind::flatten;
  s.encoding = vdm::Encoding::none;
  return s;
}

// 3x9x7 input -> conv 3->4 k3 pad1 relu maxpool2 -> conv 4->5 k2 stride1 relu avgpool2 ->
// flatten -> linear 5 -> 6 relu -> linear 6 -> 3. Odd sizes on purpose.
inline ModelSpec small_convnet() {
  ModelSpec m;
  m.input_c = 3;
  m.input_h = 9;
  m.input_w = 7;
  m.input_min = 0.f;
  m.input_max = 1.f;
  m.layers.push_back(conv(3, 4, 3, 1, 1, vdm::Pool::max, 11));
  m.layers.push_back(conv(4, 5, 2, 1, 0, vdm::Pool::avg, 21));
  m.layers.push_back(flatten());
  m.layers.push_back(linear(5 * 1 * 1, 6, true, 31));
  m.layers.push_back(linear(6, 3, false, 41));
  return m;
}

inline ModelSpec small_mlp(std::uint32_t in = 37, std::uint32_t hidden = 45,
                           std::uint32_t out = 10) {
  ModelSpec m;
  m.input_c = 1;
  m.input_h = 1;
  m.input_w = in;
  m.layers.push_back(flatten());
  m.layers.push_back(linear(in, hidden, true, 5));
  m.layers.push_back(linear(hidden, hidden - 7, true, 7));
  m.layers.push_back(linear(hidden - 7, out, false, 9));
  return m;
}

// Plain float forward pass in double precision, straight from the spec.
inline std::vector<double> reference_forward(const ModelSpec& m, const std::vector<float>& input) {
  std::vector<double> x(input.begin(), input.end());
  std::uint32_t c = m.input_c, h = m.input_h, w = m.input_w;
  for (const LayerSpec& s : m.layers) {
    if (s.kind == vdm::LayerKind::flatten) {
      c = c * h * w;
      h = w = 1;
      continue;
    }
    std::vector<double> y;
    std::uint32_t oh = 1, ow = 1;
    if (s.kind == vdm::LayerKind::linear) {
      y.assign(s.out_c, 0.0);
      for (std::uint32_t o = 0; o < s.out_c; ++o) {
        double a = s.bias[o];
        for (std::uint32_t i = 0; i < c; ++i) a += double{s.weight[std::size_t{o} * c + i]} * x[i];
        y[o] = a;
      }
    } else {
      oh = (h + 2 * s.padding - s.kernel_h) / s.stride + 1;
      ow = (w + 2 * s.padding - s.kernel_w) / s.stride + 1;
      y.assign(std::size_t{s.out_c} * oh * ow, 0.0);
      for (std::uint32_t o = 0; o < s.out_c; ++o)
        for (std::uint32_t oy = 0; oy < oh; ++oy)
          for (std::uint32_t ox = 0; ox < ow; ++ox) {
            double a = s.bias[o];
            for (std::uint32_t ic = 0; ic < c; ++ic)
              for (std::uint32_t ky = 0; ky < s.kernel_h; ++ky)
                for (std::uint32_t kx = 0; kx < s.kernel_w; ++kx) {
                  const long iy = long(oy * s.stride) - long(s.padding) + ky;
                  const long ix = long(ox * s.stride) - long(s.padding) + kx;
                  if (iy < 0 || ix < 0 || iy >= long(h) || ix >= long(w)) continue;
                  a += double{s.weight[((std::size_t{o} * c + ic) * s.kernel_h + ky) * s.kernel_w +
                                       kx]} *
                       x[(std::size_t{ic} * h + iy) * w + ix];
                }
            y[(std::size_t{o} * oh + oy) * ow + ox] = a;
          }
    }
    if (s.activation == vdm::Activation::relu)
      for (double& v : y) v = v > 0 ? v : 0;
    if (s.kind == vdm::LayerKind::conv2d && s.pool != vdm::Pool::none) {
      const std::uint32_t ph = (oh - s.pool_size) / s.pool_stride + 1;
      const std::uint32_t pw = (ow - s.pool_size) / s.pool_stride + 1;
      std::vector<double> p(std::size_t{s.out_c} * ph * pw);
      for (std::uint32_t o = 0; o < s.out_c; ++o)
        for (std::uint32_t py = 0; py < ph; ++py)
          for (std::uint32_t px = 0; px < pw; ++px) {
            double best = -1e300, sum = 0;
            for (std::uint32_t a = 0; a < s.pool_size; ++a)
              for (std::uint32_t b = 0; b < s.pool_size; ++b) {
                const double v =
                    y[(std::size_t{o} * oh + py * s.pool_stride + a) * ow + px * s.pool_stride + b];
                best = std::max(best, v);
                sum += v;
              }
            p[(std::size_t{o} * ph + py) * pw + px] =
                s.pool == vdm::Pool::max ? best : sum / (s.pool_size * s.pool_size);
          }
      y = std::move(p);
      oh = ph;
      ow = pw;
    }
    x = std::move(y);
    c = s.out_c;
    h = oh;
    w = ow;
  }
  return x;
}

inline void set_encoding(ModelSpec& m, vdm::Encoding e) {
  for (LayerSpec& s : m.layers)
    if (s.kind != vdm::LayerKind::flatten) s.encoding = e;
  m.layers.back().quantize_output = false;
}

// Min-max calibration: run the fp32 model and record each layer's output range.
inline void calibrate(ModelSpec& m, const std::vector<std::vector<float>>& inputs) {
  ModelSpec f = m;
  set_encoding(f, vdm::Encoding::f32);
  std::string err;
  auto bytes = write_vdm(f, &err);
  auto model = Model::load_buffer(bytes.data(), bytes.size(), &err);
  std::vector<float> mins(m.layers.size(), 0.f), maxs(m.layers.size(), 0.f);
  m.input_min = m.input_max = 0.f;
  for (const auto& in : inputs) {
    model->run_observe(in.data(), in.size(), mins.data(), maxs.data());
    for (float v : in) {
      m.input_min = std::min(m.input_min, v);
      m.input_max = std::max(m.input_max, v);
    }
  }
  for (std::size_t i = 0; i < m.layers.size(); ++i) {
    m.layers[i].out_min = mins[i];
    m.layers[i].out_max = maxs[i];
  }
}

// Zeroes the weights of each layer below `fraction` / sqrt(K) in magnitude: about that
// fraction of them, as the test layers' weights are uniform in +-1/sqrt(K).
inline void prune_by_magnitude(ModelSpec& spec, float fraction) {
  for (LayerSpec& l : spec.layers)
    for (float& w : l.weight)
      if (std::abs(w) < fraction / std::sqrt(static_cast<float>(l.weight.size() / l.out_c)))
        w = 0.f;
}

// Zeroes the `fraction` of each layer's 4x4 blocks with the smallest L1 norm.
inline void prune_blocks(ModelSpec& spec, double fraction) {
  for (LayerSpec& l : spec.layers) {
    if (l.weight.empty()) continue;
    const std::size_t rows = l.out_c, k = l.weight.size() / rows, bc = (k + 3) / 4;
    std::vector<float> norm(((rows + 3) / 4) * bc, 0.f);
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t c = 0; c < k; ++c)
        norm[(r / 4) * bc + c / 4] += std::abs(l.weight[r * k + c]);
    std::vector<float> sorted = norm;
    std::sort(sorted.begin(), sorted.end());
    const float cut =
        sorted[static_cast<std::size_t>(fraction * static_cast<double>(sorted.size()))];
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t c = 0; c < k; ++c)
        if (norm[(r / 4) * bc + c / 4] < cut) l.weight[r * k + c] = 0.f;
  }
}

// small_convnet with int8 layers among fp32 ones, calibrated on `inputs`: its u8 outputs
// are dequantized for the fp32 layers after them.
inline ModelSpec mixed_convnet(const std::vector<std::vector<float>>& inputs) {
  ModelSpec m = small_convnet();
  calibrate(m, inputs);
  m.layers[0].encoding = vdm::Encoding::int8;
  m.layers[3].encoding = vdm::Encoding::int8_csr;
  m.layers[3].quantize_output = true;
  return m;
}

struct TestModel {
  std::string name;
  ModelSpec spec;  // calibrated and encoded, ready for write_vdm
};

// Both test models in every encoding the runtime runs: fp32, int8, CSR and 4x4 blocks
// (pruned lightly, so that a loader may expand them to dense rows, and heavily, so that the
// sparse kernels run), and fp32 mixed with int8 layers.
inline std::vector<TestModel> every_test_model() {
  std::vector<TestModel> models;
  const std::pair<const char*, ModelSpec> bases[] = {{"mlp", small_mlp(200, 120, 10)},
                                                     {"convnet", small_convnet()}};
  for (const auto& [base_name, base] : bases) {
    const std::string name = base_name;
    const auto ins = random_inputs(16, std::size_t{base.input_c} * base.input_h * base.input_w);
    auto add = [&](const std::string& variant, ModelSpec spec, vdm::Encoding enc) {
      if (enc != vdm::Encoding::f32) {
        calibrate(spec, ins);
        set_encoding(spec, enc);
      }
      models.push_back({name + " " + variant, std::move(spec)});
    };
    add("fp32", base, vdm::Encoding::f32);
    add("int8", base, vdm::Encoding::int8);
    for (float fraction : {0.7f, 0.99f}) {
      ModelSpec pruned = base;
      prune_by_magnitude(pruned, fraction);
      add("int8 CSR " + std::to_string(static_cast<int>(fraction * 100)) + "% pruned", pruned,
          vdm::Encoding::int8_csr);
    }
    for (double fraction : {0.5, 0.9}) {
      ModelSpec pruned = base;
      prune_blocks(pruned, fraction);
      add("int8 4x4 blocks " + std::to_string(static_cast<int>(fraction * 100)) + "% pruned",
          pruned, vdm::Encoding::int8_bsr);
    }
  }
  models.push_back({"convnet fp32 and int8 mixed", mixed_convnet(random_inputs(16, 3 * 9 * 7))});
  return models;
}

}  // namespace verdant::runtime::testing
