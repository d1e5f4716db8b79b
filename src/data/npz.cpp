// .npz archives through libzip (its own object, so a program that reads only .npy files does not
// pull libzip in).
#include <zip.h>

#include <memory>

#include "verdant/core/error.hpp"
#include "verdant/data/npy.hpp"

namespace verdant::data {

namespace fs = std::filesystem;

namespace {

constexpr std::uint64_t kMaxDeflateRatio = 1032;

struct ZipCloser {
  void operator()(zip_t* z) const { zip_discard(z); }
};
using Zip = std::unique_ptr<zip_t, ZipCloser>;

Zip open_zip(const fs::path& path) {
  int err = 0;
  zip_t* z = zip_open(path.c_str(), ZIP_RDONLY, &err);
  if (!z) {
    zip_error_t e;
    zip_error_init_with_code(&e, err);
    const std::string what = zip_error_strerror(&e);
    zip_error_fini(&e);
    throw Error(path.string() + ": not a readable .npz archive (" + what + ")");
  }
  return Zip(z);
}

}  // namespace

std::vector<std::string> npz_names(const fs::path& path) {
  Zip z = open_zip(path);
  std::vector<std::string> names;
  const zip_int64_t n = zip_get_num_entries(z.get(), 0);
  for (zip_int64_t i = 0; i < n; ++i) {
    std::string name = zip_get_name(z.get(), static_cast<zip_uint64_t>(i), 0);
    if (name.ends_with(".npy")) name.resize(name.size() - 4);
    names.push_back(std::move(name));
  }
  return names;
}

NpyArray read_npz(const fs::path& path, const std::string& name) {
  Zip z = open_zip(path);
  const std::string entry = name.ends_with(".npy") ? name : name + ".npy";
  const zip_int64_t index = zip_name_locate(z.get(), entry.c_str(), 0);
  if (index < 0) {
    std::string have;
    for (const auto& n : npz_names(path)) have += (have.empty() ? "" : ", ") + n;
    throw Error(path.string() + ": no array '" + name +
                "' in the archive (it holds: " + (have.empty() ? "nothing" : have) + ")");
  }
  zip_stat_t st;
  if (zip_stat_index(z.get(), static_cast<zip_uint64_t>(index), 0, &st) != 0 ||
      !(st.valid & ZIP_STAT_SIZE))
    throw Error(path.string() + ": cannot read the entry of '" + name + "'");
  const std::string origin = path.string() + ":" + entry;
  // Deflate expands data at most about 1032:1, and an entry's compressed bytes lie inside the
  // file: a declared size beyond both is a corrupt or hostile header, refused before allocating.
  std::error_code ec;
  const std::uint64_t file_bytes = fs::file_size(path, ec);
  if (!(st.valid & ZIP_STAT_COMP_SIZE) || (!ec && st.comp_size > file_bytes) ||
      st.size > st.comp_size * kMaxDeflateRatio + 64)
    throw Error(origin + ": the entry declares " + std::to_string(st.size) +
                " bytes, more than its compressed size (" + std::to_string(st.comp_size) +
                " bytes) can hold");
  auto bytes = std::make_shared<std::vector<std::uint8_t>>(static_cast<std::size_t>(st.size));
  zip_file_t* f = zip_fopen_index(z.get(), static_cast<zip_uint64_t>(index), 0);
  if (!f) throw Error(origin + ": cannot open the entry");
  const zip_int64_t got = zip_fread(f, bytes->data(), bytes->size());
  zip_fclose(f);
  if (got < 0 || static_cast<std::size_t>(got) != bytes->size())
    throw Error(origin + ": the entry is truncated or corrupt");
  return NpyArray::parse(bytes, *bytes, origin);
}

}  // namespace verdant::data
