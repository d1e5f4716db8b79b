#include "verdant/data/split.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>

#include "verdant/core/error.hpp"
#include "verdant/data/idx.hpp"
#include "verdant/data/loader.hpp"
#include "verdant/data/npy.hpp"

namespace verdant::data {

namespace fs = std::filesystem;

namespace {

enum class Format { idx_folder, csv, npy, npz, idx_file };

Format format_of(const fs::path& p) {
  if (fs::is_directory(p)) return Format::idx_folder;
  std::string name = p.filename().string();
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (name.ends_with(".gz")) name.resize(name.size() - 3);
  if (name.ends_with(".csv") || name.ends_with(".tsv") || name.ends_with(".txt"))
    return Format::csv;
  if (name.ends_with(".npy")) return Format::npy;
  if (name.ends_with(".npz")) return Format::npz;
  if (name.ends_with("-ubyte") || name.ends_with(".idx")) return Format::idx_file;
  // Neither a file Verdant reads nor an existing one: taken as the folder it was meant to be.
  if (!fs::exists(p)) throw Error(p.string() + ": dataset directory does not exist");
  throw SettingError("data", "data " + p.string() +
                                 ": not a data format Verdant reads (a folder of IDX files, "
                                 ".csv, .npy, .npz or an IDX -ubyte file)");
}

// Normalization rounded to 4 decimals, so a data set's pair is stable and printable
// (Fashion-MNIST's training pixels give exactly 0.2860 and 0.3530).
Normalization rounded(Normalization n) {
  for (auto* v : {&n.mean, &n.std})
    for (float& x : *v) x = static_cast<float>(std::round(double(x) * 1e4) / 1e4);
  for (float& s : n.std)
    if (!(s > 0)) s = 1.0f;
  return n;
}

struct Part {
  std::shared_ptr<const Dataset> data;
  std::vector<std::string> classes;
  std::string what;  // "train-images-idx3-ubyte.gz", "wine.csv"
};

NpyArray idx_as_array(const fs::path& path) {
  auto idx = std::make_shared<IdxArray>(read_idx(path));
  return NpyArray::wrap(idx, NpyType::u8, idx->dims, idx->bytes.data());
}

fs::path needed_labels(const fs::path& labels, const fs::path& data, const char* setting) {
  if (labels.empty())
    throw SettingError(setting, std::string(setting) + " is needed: " + data.string() +
                                    " holds no labels (give them as another file)");
  return labels;
}

Part load_file(Format f, const fs::path& path, const fs::path& labels, const DataOptions& o,
               const std::vector<std::string>& classes, const char* labels_setting) {
  Part p;
  p.what = path.filename().string();
  switch (f) {
    case Format::csv: {
      CsvOptions csv = o.csv;
      if (!classes.empty()) csv.classes = classes;
      auto ds = std::make_shared<CsvDataset>(CsvDataset::load(path, csv));
      p.classes = ds->class_names();
      p.data = std::move(ds);
      return p;
    }
    case Format::npy:
      p.data = std::make_shared<ArrayDataset>(
          read_npy(path), read_npy(needed_labels(labels, path, labels_setting)), path.string());
      return p;
    case Format::npz:
      p.data = std::make_shared<ArrayDataset>(read_npz(path, o.x_array), read_npz(path, o.y_array),
                                              path.string());
      return p;
    case Format::idx_file:
      p.data = std::make_shared<ArrayDataset>(
          idx_as_array(path), idx_as_array(needed_labels(labels, path, labels_setting)),
          path.string());
      return p;
    case Format::idx_folder:
      break;
  }
  throw Error(path.string() + ": is a folder");
}

fs::path idx_in(const fs::path& dir, const std::string& stem) {
  for (const char* ext : {".gz", ""})
    if (fs::exists(dir / (stem + ext))) return dir / (stem + ext);
  throw Error((dir / (stem + ".gz")).string() + ": no such file (nor " + stem +
              "); install the Debian package dataset-fashion-mnist or pass --data DIR");
}

std::shared_ptr<const Dataset> limit(std::shared_ptr<const Dataset> ds, std::int64_t n,
                                     const char* setting) {
  if (n == 0 || n == ds->size()) return ds;
  if (n > ds->size())
    throw SettingError(setting, std::string(setting) + " " + std::to_string(n) + " exceeds the " +
                                    std::to_string(ds->size()) + " samples available");
  return std::make_shared<SubsetDataset>(std::move(ds), 0, n);
}

// Data for a model whose normalization does not fit the samples: trained on other data.
SettingError mismatch(const fs::path& data, const Normalization& n, const Shape& sample) {
  return SettingError("data", "data " + data.string() + " has samples of shape " +
                                  shape_str(sample) + ", the model was trained on samples of " +
                                  std::to_string(n.mean.size()) + " features");
}

// Images are normalized with one pair over every value; flat features, each on its own.
bool per_feature(const Shape& sample, bool bytes) {
  return !bytes && sample.size() == 1;
}

}  // namespace

DataSplit load_split(const DataOptions& o, Parts which) {
  // Settings are checked before anything is read, so a bad one costs no I/O.
  if (o.limit_train < 0) throw SettingError("limit_train", "limit_train must not be negative");
  if (o.limit_test < 0) throw SettingError("limit_test", "limit_test must not be negative");
  if (o.test_fraction && !(*o.test_fraction > 0 && *o.test_fraction < 1))
    throw SettingError("test_fraction", "test_fraction must be in (0, 1)");
  const Format format = format_of(o.location);
  DataSplit s;
  std::shared_ptr<const Dataset> train, test;
  bool bytes = false;               // samples are pixels (normalized with one pair)
  bool already_normalized = false;  // the images normalize themselves (a byte table)
  std::string source;

  if (format == Format::idx_folder) {
    if (!fs::is_directory(o.location))
      throw Error(o.location.string() + ": dataset directory does not exist");
    const auto read = [&](const char* prefix) {
      return std::make_shared<ImageDataset>(ImageDataset::from_idx(
          idx_in(o.location, std::string(prefix) + "-images-idx3-ubyte"),
          idx_in(o.location, std::string(prefix) + "-labels-idx1-ubyte"), 0, 0.f, 1.f));
    };
    std::shared_ptr<ImageDataset> train_images, test_images;
    if (which != Parts::test || !o.normalization) train_images = read("train");
    if (which != Parts::train) test_images = read("t10k");
    Normalization n;
    if (o.normalization) {
      n = *o.normalization;
    } else {
      const auto [mean, sd] = train_images->pixel_statistics();
      n = rounded({{static_cast<float>(mean)}, {static_cast<float>(sd)}});
    }
    if (n.mean.size() != 1)
      throw mismatch(o.location, n, (train_images ? train_images : test_images)->sample_shape());
    if (train_images)
      train = std::make_shared<ImageDataset>(train_images->normalized(n.mean[0], n.std[0]));
    if (test_images)
      test = std::make_shared<ImageDataset>(test_images->normalized(n.mean[0], n.std[0]));
    s.normalization = n;
    already_normalized = true;
    bytes = true;
    source = "Fashion-MNIST (" + o.location.string() + "):";
  } else {
    Part whole = load_file(format, o.location, o.labels, o, o.classes, "labels");
    s.classes = whole.classes;
    bytes = dynamic_cast<const ArrayDataset*>(whole.data.get()) &&
            static_cast<const ArrayDataset&>(*whole.data).is_bytes();
    source = o.location.string() + ":";
    if (!o.test_location.empty()) {
      const Format tf = format_of(o.test_location);
      if (tf == Format::idx_folder)
        throw SettingError("test_data", "test_data must be a file, not a folder");
      Part t = load_file(tf, o.test_location, o.test_labels, o,
                         s.classes.empty() ? o.classes : s.classes, "test_labels");
      train = whole.data;
      test = t.data;
      source += " test " + o.test_location.string() + ":";
    } else {
      // Train on all of it when only the training part is wanted and no fraction is asked.
      const double fraction = o.test_fraction.value_or(which == Parts::train ? 0.0 : 0.2);
      const std::int64_t n = whole.data->size();
      const auto held = static_cast<std::int64_t>(std::llround(fraction * double(n)));
      if (fraction > 0 && (held < 1 || held >= n))
        throw SettingError("test_fraction", "test_fraction " + std::to_string(fraction) + " of " +
                                                std::to_string(n) + " samples leaves a part empty");
      if (held > 0) {
        const auto order = shuffled_order(n, o.split_seed, 0);
        train = std::make_shared<IndexedDataset>(
            whole.data, std::vector<std::int64_t>(order.begin() + held, order.end()));
        test = std::make_shared<IndexedDataset>(
            whole.data, std::vector<std::int64_t>(order.begin(), order.begin() + held));
        char note[96];
        std::snprintf(note, sizeof note, " %.0f%% held out for testing (seed %llu),",
                      100.0 * fraction, static_cast<unsigned long long>(o.split_seed));
        source += note;
      } else {
        train = whole.data;
      }
    }
  }
  if (!o.shape.empty()) {
    if (train) train = std::make_shared<ReshapedDataset>(train, o.shape);
    if (test) test = std::make_shared<ReshapedDataset>(test, o.shape);
  }
  const Shape sample = (train ? train : test)->sample_shape();
  // The model's normalization when given, else the training part's.
  if (already_normalized) {
  } else if (o.normalization) {
    s.normalization = *o.normalization;
  } else if (train) {
    s.normalization = rounded(fit_normalization(*train, per_feature(sample, bytes)));
  }
  if (!already_normalized && !s.normalization.empty()) {
    const std::size_t k = s.normalization.mean.size();
    if (k != 1 && k != static_cast<std::size_t>(shape_numel(sample)))
      throw mismatch(o.location, s.normalization, sample);
    if (train) train = std::make_shared<NormalizedDataset>(train, s.normalization);
    if (test) test = std::make_shared<NormalizedDataset>(test, s.normalization);
  }
  if (which == Parts::train) test.reset();
  if (which == Parts::test) train.reset();
  if (which != Parts::train && !test)
    throw SettingError("test_data", "test_data is needed: " + o.location.string() +
                                        " has no test part (give test_data or test_fraction)");
  s.pixels = bytes;
  s.num_classes = std::max(train ? train->num_classes() : 0, test ? test->num_classes() : 0);
  s.sample_shape = sample;
  if (train) s.train = limit(train, o.limit_train, "limit_train");
  if (test) s.test = limit(test, o.limit_test, "limit_test");
  s.description = source;
  if (s.train) s.description += " " + std::to_string(s.train->size()) + " train";
  if (s.train && s.test) s.description += ",";
  if (s.test) s.description += " " + std::to_string(s.test->size()) + " test";
  return s;
}

}  // namespace verdant::data
