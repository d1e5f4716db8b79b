// verdant-edge: the runtime's own small tool. Hand-parsed argv (no CLI11/fmt) keeps the
// stripped binary small. Verbs: run, finetune, info.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "inputs.hpp"
#include "power.hpp"
#include "verdant/core/error.hpp"
#include "verdant/core/io.hpp"
#include "verdant/runtime/model.hpp"
#include "verdant/runtime/vdm_writer.hpp"

namespace verdant::edge {
namespace {

constexpr const char* kUsage =
    "usage: verdant-edge <command> [options]\n"
    "  run MODEL.vdm --input FILE [--labels FILE] [--format auto|idx|csv|npy|raw] [--normalize]\n"
    "      [--label-column first|last|none|N] [--x-array NAME] [--y-array NAME]\n"
    "      [--limit N] [--repeat R] [--show N]\n"
    "      Prints predictions, accuracy (labels from --labels or a CSV label column),\n"
    "      latency per inference and estimated energy per 1,000 inferences.\n"
    "  finetune MODEL.vdm --data FILE [--labels FILE] --out NEW.vdm [--format ...]\n"
    "      [--epochs N] [--lr X] [--val-fraction F] [--limit N]\n"
    "      Retrains only the classifier head (last Linear) in float on this device,\n"
    "      requantizes it and writes NEW.vdm atomically.\n"
    "  info MODEL.vdm\n"
    "Inputs: IDX (.gz or plain; u8 pixels are normalised as the model's header says), CSV\n"
    "(one sample per row; a leading label column, or the one --label-column names), NumPy\n"
    ".npy (labels in --labels, a .npy or IDX file) and .npz (arrays x, y), raw float32.\n";

// Options: --name value pairs after the verb and one positional model path.
struct Args {
  std::string model;
  std::map<std::string, std::string> opts;
  std::vector<std::string> flags;
  bool has(const std::string& f) const {
    return std::find(flags.begin(), flags.end(), f) != flags.end();
  }
  std::string get(const std::string& k, const std::string& def = "") const {
    auto it = opts.find(k);
    return it == opts.end() ? def : it->second;
  }
  std::string need(const std::string& k) const {
    auto it = opts.find(k);
    if (it == opts.end()) throw UsageError("missing required option --" + k);
    return it->second;
  }
};

Args parse(int argc, char** argv, const std::vector<std::string>& valued,
           const std::vector<std::string>& boolean) {
  Args a;
  for (int i = 2; i < argc; ++i) {
    std::string s = argv[i];
    if (s.rfind("--", 0) == 0) {
      std::string name = s.substr(2), value;
      const auto eq = name.find('=');
      bool inline_value = eq != std::string::npos;
      if (inline_value) {
        value = name.substr(eq + 1);
        name = name.substr(0, eq);
      }
      if (std::find(boolean.begin(), boolean.end(), name) != boolean.end()) {
        a.flags.push_back(name);
        continue;
      }
      if (std::find(valued.begin(), valued.end(), name) == valued.end())
        throw UsageError("unknown option --" + name + " for '" + argv[1] + "'");
      if (!inline_value) {
        if (i + 1 >= argc) throw UsageError("option --" + name + " needs a value");
        value = argv[++i];
      }
      a.opts[name] = value;
    } else if (a.model.empty()) {
      a.model = s;
    } else {
      throw UsageError("unexpected argument '" + s + "'");
    }
  }
  if (a.model.empty()) throw UsageError(std::string("'") + argv[1] + "' needs a MODEL.vdm");
  return a;
}

long to_long(const std::string& flag, const std::string& v, long lo, long hi) {
  char* end = nullptr;
  errno = 0;
  const long x = std::strtol(v.c_str(), &end, 10);
  if (v.empty() || *end != '\0' || errno != 0 || x < lo || x > hi)
    throw UsageError("--" + flag + ": '" + v + "' is not an integer in " + std::to_string(lo) +
                     ".." + std::to_string(hi));
  return x;
}

double to_double(const std::string& flag, const std::string& v, double lo, double hi) {
  char* end = nullptr;
  const double x = std::strtod(v.c_str(), &end);
  if (v.empty() || *end != '\0' || !(x >= lo && x <= hi))
    throw UsageError("--" + flag + ": '" + v + "' is not a number in [" + std::to_string(lo) +
                     ", " + std::to_string(hi) + "]");
  return x;
}

std::unique_ptr<runtime::Model> load_model(const std::string& path) {
  std::string err;
  auto m = runtime::Model::load_file(path, &err);
  if (!m) throw Error(err);
  return m;
}

InputOptions input_options(const Args& a) {
  InputOptions o;
  o.format = parse_format(a.get("format", "auto"));
  o.normalize_values = a.has("normalize");
  o.label_column = a.get("label-column");
  o.x_array = a.get("x-array", "x");
  o.y_array = a.get("y-array", "y");
  return o;
}

Samples load_inputs(const Args& a, const std::string& key, const runtime::Model& m) {
  const std::string path = a.need(key);
  Samples s = read_samples(path, input_options(a), m.input_size(), m.byte_scale(), m.byte_offset());
  if (a.opts.count("labels") != 0) {
    const std::string lp = a.get("labels");
    s.labels = read_labels(lp);
    if (s.labels.size() != s.count)
      throw Error(lp + ": " + std::to_string(s.labels.size()) + " labels for " +
                  std::to_string(s.count) + " samples in " + path);
  }
  for (std::int32_t l : s.labels)
    if (l < 0 || static_cast<std::size_t>(l) >= m.output_size())
      throw Error((a.opts.count("labels") ? a.get("labels") : path) + ": label " +
                  std::to_string(l) + " is not below the model's " +
                  std::to_string(m.output_size()) + " outputs");
  if (a.opts.count("limit") != 0) {
    const auto n = static_cast<std::size_t>(to_long("limit", a.get("limit"), 1, 1L << 30));
    if (n < s.count) {
      s.count = n;
      s.values.resize(n * s.size);
      if (!s.labels.empty()) s.labels.resize(n);
    }
  }
  return s;
}

int cmd_info(int argc, char** argv) {
  Args a = parse(argc, argv, {}, {});
  auto m = load_model(a.model);
  std::printf("model %s (%s): input %ux%ux%u, %zu outputs, %zu layers, %zu bytes, kernels %s\n",
              a.model.c_str(), m->name()[0] ? m->name() : "unnamed", m->input_c(), m->input_h(),
              m->input_w(), m->output_size(), m->num_layers(), m->file_size(), m->isa());
  for (std::size_t i = 0; i < m->num_layers(); ++i) {
    const auto& l = m->layer(i);
    std::printf("  %zu %-7s %-8s %ux%ux%u -> %ux%ux%u%s%s%s\n", i, vdm::layer_kind_name(l.kind),
                vdm::encoding_name(l.encoding), l.in_c, l.in_h, l.in_w, l.out_c, l.out_h, l.out_w,
                l.activation == vdm::Activation::relu ? " relu" : "",
                l.pool == vdm::Pool::max   ? " maxpool"
                : l.pool == vdm::Pool::avg ? " avgpool"
                                           : "",
                m->densified(i) ? " (run dense: faster at this density)" : "");
  }
  return 0;
}

int argmax(const std::vector<float>& v) {
  return static_cast<int>(std::max_element(v.begin(), v.end()) - v.begin());
}

// Labels for `count` samples of `input_path` (--labels, else the input's own), checked against the
// model's outputs.
std::vector<std::int32_t> load_labels(const Args& a, const std::string& input_path,
                                      std::vector<std::int32_t> from_input, std::size_t count,
                                      const runtime::Model& m) {
  const bool given = a.opts.count("labels") != 0;
  const std::string lp = given ? a.get("labels") : input_path;
  std::vector<std::int32_t> labels = given ? read_labels(lp) : std::move(from_input);
  if (!given && labels.empty()) return {};
  if (labels.size() != count)
    throw Error(lp + ": " + std::to_string(labels.size()) + " labels for " + std::to_string(count) +
                " samples in " + input_path);
  for (std::int32_t l : labels)
    if (l < 0 || static_cast<std::size_t>(l) >= m.output_size())
      throw Error(lp + ": label " + std::to_string(l) + " is not below the model's " +
                  std::to_string(m.output_size()) + " outputs");
  return labels;
}

int cmd_run(int argc, char** argv) {
  Args a = parse(argc, argv,
                 {"input", "labels", "format", "label-column", "x-array", "y-array", "limit",
                  "repeat", "show"},
                 {"normalize"});
  const long repeat = to_long("repeat", a.get("repeat", "1"), 1, 1000000);
  const long show = to_long("show", a.get("show", "20"), 0, 1L << 30);
  auto m = load_model(a.model);
  // Inputs stream in chunks (IDX): peak memory stays small however long the file is.
  const std::string path = a.need("input");
  SampleStream in(path, input_options(a), m->input_size(), m->byte_scale(), m->byte_offset());
  std::vector<std::int32_t> labels = load_labels(a, path, in.labels(), in.count(), *m);
  std::size_t count = in.count();
  if (a.opts.count("limit") != 0)
    count =
        std::min(count, static_cast<std::size_t>(to_long("limit", a.get("limit"), 1, 1L << 30)));
  labels.resize(std::min(labels.size(), count));
  constexpr std::size_t kChunk = 64;
  std::vector<float> chunk(kChunk * in.size());
  std::vector<float> out(m->output_size());
  std::vector<std::int32_t> pred(count);
  // Latencies go into a fixed histogram (0.1 us bins up to 10 ms): no per-inference storage.
  constexpr std::size_t kBins = 100000;
  std::vector<std::uint32_t> hist(kBins + 1);
  std::size_t n = 0;
  double cpu = 0, wall = 0;
  bool warm = false;
  for (long r = 0; r < repeat; ++r) {
    in.rewind();
    std::size_t i = 0;
    while (i < count) {
      const std::size_t got = in.next(chunk.data(), std::min(kChunk, count - i));
      if (got == 0) break;
      if (!warm) {  // warm-up: page in the weights
        m->run(chunk.data(), in.size(), out.data(), out.size());
        warm = true;
      }
      const double cpu0 = process_cpu_seconds();
      const auto wall0 = std::chrono::steady_clock::now();
      for (std::size_t j = 0; j < got; ++j, ++i) {
        const auto t0 = std::chrono::steady_clock::now();
        m->run(chunk.data() + j * in.size(), in.size(), out.data(), out.size());
        const double us =
            std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0)
                .count();
        ++hist[std::min(kBins, static_cast<std::size_t>(us * 10.0))];
        ++n;
        pred[i] = argmax(out);
      }
      wall += std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
      cpu += process_cpu_seconds() - cpu0;
    }
  }
  auto quantile = [&](double q) {
    const auto target = static_cast<std::size_t>(q * static_cast<double>(n - 1));
    std::size_t seen = 0;
    for (std::size_t b = 0; b <= kBins; ++b) {
      seen += hist[b];
      if (seen > target) return (static_cast<double>(b) + 0.5) / 10.0;
    }
    return static_cast<double>(kBins) / 10.0;
  };
  std::printf("model %s: %zu inputs x %ld, kernels %s\n", a.model.c_str(), count, repeat, m->isa());
  std::printf("predictions:");
  for (std::size_t i = 0; i < count && i < static_cast<std::size_t>(show); ++i)
    std::printf(" %d", pred[i]);
  std::printf("%s\n", count > static_cast<std::size_t>(show) ? " ..." : "");
  if (!labels.empty()) {
    std::size_t ok = 0;
    for (std::size_t i = 0; i < count; ++i) ok += pred[i] == labels[i];
    std::printf("accuracy: %.2f%% (%zu / %zu)\n", 100.0 * ok / count, ok, count);
  }
  std::printf(
      "latency per inference: median %.1f us, mean %.2f us, p99 %.1f us (batch 1, 1 thread)\n",
      quantile(0.5), wall * 1e6 / static_cast<double>(n), quantile(0.99));
  const CorePower p = core_power();
  std::printf("energy per 1,000 inferences: %.4f J (%s)\n", cpu * p.watts / n * 1000.0,
              p.source.c_str());
  std::printf("peak resident memory: %ld KB\n", peak_rss_kb());
  return 0;
}

int cmd_finetune(int argc, char** argv) {
  Args a = parse(argc, argv,
                 {"data", "labels", "out", "format", "label-column", "x-array", "y-array", "epochs",
                  "lr", "val-fraction", "limit"},
                 {"normalize"});
  const std::string out_path = a.need("out");
  const long epochs = to_long("epochs", a.get("epochs", "5"), 1, 10000);
  const double lr = to_double("lr", a.get("lr", "0.01"), 1e-8, 10.0);
  const double val_frac = to_double("val-fraction", a.get("val-fraction", "0.2"), 0.0, 0.9);
  auto m = load_model(a.model);
  Samples s = load_inputs(a, "data", *m);
  if (s.labels.empty())
    throw UsageError("finetune needs labels: --labels FILE or a CSV label column");
  const std::size_t head = m->num_layers() - 1;
  if (m->layer(head).kind != vdm::LayerKind::linear)
    throw Error(a.model + ": the last layer is not a Linear classifier head");
  std::vector<float> w, b;
  std::string err;
  if (!runtime::layer_weights(*m, head, &w, &b, &err)) throw Error(a.model + ": " + err);
  const std::size_t k = m->activation_size(head), classes = m->output_size();

  // Features = the (dequantized) activation entering the head, computed once.
  std::vector<float> feat(s.count * k);
  for (std::size_t i = 0; i < s.count; ++i)
    m->run_until(s.values.data() + i * s.size, s.size, head, feat.data() + i * k, k);
  const std::size_t n_val = static_cast<std::size_t>(std::floor(val_frac * s.count));
  const std::size_t n_train = s.count - n_val;
  if (n_train == 0) throw UsageError("--val-fraction leaves no training samples");

  auto accuracy = [&](runtime::Model& model) {
    std::size_t ok = 0;
    const std::size_t from = n_val > 0 ? n_train : 0;
    for (std::size_t i = from; i < s.count; ++i)
      ok += model.predict(s.values.data() + i * s.size, s.size) == s.labels[i];
    return 100.0 * ok / static_cast<double>(s.count - from);
  };
  const double before = accuracy(*m);

  // Softmax regression on the features: minibatch SGD, batch 32, fixed seed.
  std::vector<std::size_t> order(n_train);
  std::iota(order.begin(), order.end(), 0);
  std::mt19937 rng(42);
  std::vector<float> logits(classes), gw(w.size()), gb(classes);
  const std::size_t batch = 32;
  for (long e = 0; e < epochs; ++e) {
    std::shuffle(order.begin(), order.end(), rng);
    for (std::size_t start = 0; start < n_train; start += batch) {
      const std::size_t end = std::min(n_train, start + batch);
      std::fill(gw.begin(), gw.end(), 0.f);
      std::fill(gb.begin(), gb.end(), 0.f);
      for (std::size_t bi = start; bi < end; ++bi) {
        const float* x = feat.data() + order[bi] * k;
        float mx = -1e30f;
        for (std::size_t c = 0; c < classes; ++c) {
          float z = b[c];
          for (std::size_t j = 0; j < k; ++j) z += w[c * k + j] * x[j];
          logits[c] = z;
          mx = std::max(mx, z);
        }
        float sum = 0.f;
        for (float& z : logits) sum += (z = std::exp(z - mx));
        for (std::size_t c = 0; c < classes; ++c) {
          const float g =
              logits[c] / sum - (static_cast<std::int32_t>(c) == s.labels[order[bi]] ? 1.f : 0.f);
          gb[c] += g;
          for (std::size_t j = 0; j < k; ++j) gw[c * k + j] += g * x[j];
        }
      }
      const float scale = static_cast<float>(lr) / static_cast<float>(end - start);
      for (std::size_t i = 0; i < w.size(); ++i) w[i] -= scale * gw[i];
      for (std::size_t c = 0; c < classes; ++c) b[c] -= scale * gb[c];
    }
  }
  std::size_t delta = 0;
  auto bytes = runtime::replace_layer_weights(*m, head, w, b, &delta, &err);
  if (bytes.empty()) throw Error(a.model + ": " + err);
  auto m2 = runtime::Model::load_buffer(bytes.data(), bytes.size(), &err);
  if (!m2) throw Error("internal: the fine-tuned model does not load: " + err);
  const double after = accuracy(*m2);
  write_file_atomic(out_path, std::span<const std::uint8_t>(bytes.data(), bytes.size()));

  const std::size_t data_bytes = s.count * (s.bytes_per_sample + 1);
  std::printf("fine-tuned the head (layer %zu, %s, %zux%zu) on %zu samples, %ld epochs, lr %g\n",
              head, vdm::encoding_name(m->layer(head).encoding), classes, k, n_train, epochs, lr);
  std::printf("accuracy on %s: %.2f%% before, %.2f%% after\n",
              n_val > 0 ? "held-out samples" : "the training samples", before, after);
  std::printf("wrote %s (%zu bytes)\n", out_path.c_str(), bytes.size());
  std::printf(
      "transfer: head delta %zu bytes to download (new head) and %zu to upload (local update)"
      " vs %zu bytes to upload the %zu labelled samples to the cloud (%.1fx less)\n",
      delta, delta, data_bytes, s.count, static_cast<double>(data_bytes) / (2.0 * delta));
  return 0;
}

}  // namespace
}  // namespace verdant::edge

int main(int argc, char** argv) {
  using namespace verdant;
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0) {
    std::fputs(edge::kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  try {
    const std::string cmd = argv[1];
    if (cmd == "run") return edge::cmd_run(argc, argv);
    if (cmd == "finetune") return edge::cmd_finetune(argc, argv);
    if (cmd == "info") return edge::cmd_info(argc, argv);
    throw UsageError("unknown command '" + cmd + "' (run, finetune, info)");
  } catch (const UsageError& e) {
    std::fprintf(stderr, "verdant-edge: error: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "verdant-edge: error: %s\n", e.what());
    return 1;
  }
}
