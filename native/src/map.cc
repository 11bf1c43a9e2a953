// Map operations and fd management. Synchronous syscalls on fds (DESIGN: map ops are
// synchronous), except mapUpdateBatchAsync (a large batch's kernel work on a libuv worker). Keys and values are Buffers whose sizes are checked against the map's
// key_size / value size BEFORE the syscall (the kernel would otherwise read past the Buffer).
// Per-CPU maps take and return one Buffer of nr_possible_cpus * round_up(value_size, 8) bytes.
#include "common.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

namespace tortie {
namespace {

// Metadata of a map fd: cached for fds the addon owns, queried otherwise (which also turns a
// bad fd into EBADF before any other work).
MapMeta MetaFor(Napi::Env env, int fd) {
  auto &fds = State(env).fds;
  auto it = fds.find(fd);
  if (it != fds.end() && it->second.haveMeta) return it->second.meta;
  // The kernel's info call answers EBADFD for a closed fd; map syscalls answer EBADF. Report
  // EBADF consistently, and EINVAL (what a map syscall would say) for a non-map fd.
  if (FdKindOf(fd) != FdKind::Map)
    Fail("ERR_BPF_BAD_FD", "bpf_obj_get_info_by_fd", EINVAL, "fd " + std::to_string(fd) + " is not a BPF map");
  return QueryMapMeta(fd);
}

uint32_t ValueBufSize(const MapMeta &m) {
  if (IsPerCpuMapType(m.type)) return PossibleCpus() * ((m.valueSize + 7u) & ~7u);
  return m.valueSize;
}

std::string MapLabel(const MapMeta &m, int fd) {
  return "map " + (m.name.empty() ? std::string("(unnamed)") : m.name) + " (fd " + std::to_string(fd) + ")";
}

const uint8_t *CheckKey(const MapMeta &m, int fd, const Napi::CallbackInfo &info, size_t i,
                        const char *code, const char *op) {
  if (m.keySize == 0) return nullptr;
  if (!info[i].IsBuffer())
    Fail(code, op, EINVAL, "key must be a Buffer of " + std::to_string(m.keySize) + " bytes for " + MapLabel(m, fd));
  auto b = info[i].As<Napi::Buffer<uint8_t>>();
  if (b.Length() != m.keySize)
    Fail(code, op, EINVAL, "key is " + std::to_string(b.Length()) + " bytes; " + MapLabel(m, fd) +
                               " has key_size " + std::to_string(m.keySize));
  return b.Data();
}

const uint8_t *CheckValue(const MapMeta &m, int fd, const Napi::CallbackInfo &info, size_t i,
                          const char *code, const char *op) {
  uint32_t want = ValueBufSize(m);
  if (!info[i].IsBuffer())
    Fail(code, op, EINVAL, "value must be a Buffer of " + std::to_string(want) + " bytes for " + MapLabel(m, fd));
  auto b = info[i].As<Napi::Buffer<uint8_t>>();
  if (b.Length() != want) {
    std::string why = IsPerCpuMapType(m.type)
        ? " expects " + std::to_string(want) + " (per-CPU: " + std::to_string(PossibleCpus()) +
              " CPUs x " + std::to_string((m.valueSize + 7u) & ~7u) + ")"
        : " has value_size " + std::to_string(m.valueSize);
    Fail(code, op, EINVAL, "value is " + std::to_string(b.Length()) + " bytes; " + MapLabel(m, fd) + why);
  }
  return b.Data();
}

Napi::Object MetaToJs(Napi::Env env, const MapMeta &m) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("type", m.type);
  o.Set("id", m.id);
  o.Set("keySize", m.keySize);
  o.Set("valueSize", m.valueSize);
  o.Set("maxEntries", m.maxEntries);
  o.Set("flags", m.flags);
  o.Set("name", m.name);
  return o;
}

void Own(Napi::Env env, int fd, FdKind kind) {
  OwnedFd o{kind, false, {}};
  if (kind == FdKind::Map) {
    o.meta = QueryMapMeta(fd);
    o.haveMeta = true;
  }
  State(env).fds[fd] = o;
}

// mapLookup(fd, key, flags, throwIfMissing) -> Buffer | null
Napi::Value MapLookup(const Napi::CallbackInfo &info) {
  return Guarded(info, "ERR_BPF_MAP_LOOKUP", "bpf_map_lookup_elem", [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    int fd = ArgInt(info, 0, "fd");
    MapMeta m = MetaFor(env, fd);
    const uint8_t *key = CheckKey(m, fd, info, 1, "ERR_BPF_MAP_LOOKUP", "bpf_map_lookup_elem");
    uint64_t flags = ArgU32(info, 2, "flags");
    bool throwIfMissing = ArgBool(info, 3, "throwIfMissing");
    auto out = Napi::Buffer<uint8_t>::New(env, ValueBufSize(m));
    int r = bpf_map_lookup_elem_flags(fd, key, out.Data(), flags);
    if (r < 0) {
      int e = ErrnoOf(r);
      if (e == ENOENT && !throwIfMissing) return env.Null();
      Fail("ERR_BPF_MAP_LOOKUP", "bpf_map_lookup_elem", e,
           e == ENOENT ? "no such key in " + MapLabel(m, fd) : "lookup in " + MapLabel(m, fd));
    }
    return out;
  });
}

// mapUpdate(fd, key, value, flags)
Napi::Value MapUpdate(const Napi::CallbackInfo &info) {
  return Guarded(info, "ERR_BPF_MAP_UPDATE", "bpf_map_update_elem", [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    int fd = ArgInt(info, 0, "fd");
    MapMeta m = MetaFor(env, fd);
    const uint8_t *key = CheckKey(m, fd, info, 1, "ERR_BPF_MAP_UPDATE", "bpf_map_update_elem");
    const uint8_t *val = CheckValue(m, fd, info, 2, "ERR_BPF_MAP_UPDATE", "bpf_map_update_elem");
    uint64_t flags = ArgU32(info, 3, "flags");
    int r = bpf_map_update_elem(fd, key, val, flags);
    if (r < 0) {
      int e = ErrnoOf(r);
      std::string why = e == EEXIST ? "key already exists in " : e == ENOENT ? "no such key in " :
                        e == E2BIG ? "map full or index out of range: " : "update of ";
      Fail("ERR_BPF_MAP_UPDATE", "bpf_map_update_elem", e, why + MapLabel(m, fd));
    }
    return env.Undefined();
  });
}

// mapDelete(fd, key, throwIfMissing) -> boolean (false: key was absent)
Napi::Value MapDelete(const Napi::CallbackInfo &info) {
  return Guarded(info, "ERR_BPF_MAP_DELETE", "bpf_map_delete_elem", [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    int fd = ArgInt(info, 0, "fd");
    MapMeta m = MetaFor(env, fd);
    const uint8_t *key = CheckKey(m, fd, info, 1, "ERR_BPF_MAP_DELETE", "bpf_map_delete_elem");
    bool throwIfMissing = ArgBool(info, 2, "throwIfMissing");
    int r = bpf_map_delete_elem(fd, key);
    if (r < 0) {
      int e = ErrnoOf(r);
      if (e == ENOENT && !throwIfMissing) return Napi::Boolean::New(env, false);
      Fail("ERR_BPF_MAP_DELETE", "bpf_map_delete_elem", e,
           e == ENOENT ? "no such key in " + MapLabel(m, fd) : "delete from " + MapLabel(m, fd));
    }
    return Napi::Boolean::New(env, true);
  });
}

// mapGetNextKey(fd, key | null) -> Buffer | null (null: no more keys)
Napi::Value MapGetNextKey(const Napi::CallbackInfo &info) {
  return Guarded(info, "ERR_BPF_MAP_NEXT_KEY", "bpf_map_get_next_key", [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    int fd = ArgInt(info, 0, "fd");
    MapMeta m = MetaFor(env, fd);
    const uint8_t *key = ArgIsNullish(info, 1) ? nullptr
        : CheckKey(m, fd, info, 1, "ERR_BPF_MAP_NEXT_KEY", "bpf_map_get_next_key");
    auto out = Napi::Buffer<uint8_t>::New(env, m.keySize);
    int r = bpf_map_get_next_key(fd, key, out.Data());
    if (r < 0) {
      int e = ErrnoOf(r);
      if (e == ENOENT) return env.Null();
      Fail("ERR_BPF_MAP_NEXT_KEY", "bpf_map_get_next_key", e, "iterate " + MapLabel(m, fd));
    }
    return out;
  });
}

// mapKeys(fd, limit) -> Buffer of n*keySize bytes. A hash map changing underneath may restart
// iteration (kernel semantics), so at most `limit` keys are returned.
Napi::Value MapKeys(const Napi::CallbackInfo &info) {
  return Guarded(info, "ERR_BPF_MAP_NEXT_KEY", "bpf_map_get_next_key", [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    int fd = ArgInt(info, 0, "fd");
    uint32_t limit = ArgU32(info, 1, "limit");
    MapMeta m = MetaFor(env, fd);
    const uint32_t ks = m.keySize;
    if (ks == 0) Fail("ERR_BPF_MAP_NEXT_KEY", "bpf_map_get_next_key", EINVAL, MapLabel(m, fd) + " has no keys");
    std::vector<uint8_t> keys;
    std::vector<uint8_t> cur(ks);
    const void *prev = nullptr;
    uint32_t n = 0;
    while (n < limit) {
      int r = bpf_map_get_next_key(fd, prev, cur.data());
      if (r < 0) {
        int e = ErrnoOf(r);
        if (e == ENOENT) break;
        Fail("ERR_BPF_MAP_NEXT_KEY", "bpf_map_get_next_key", e, "iterate " + MapLabel(m, fd));
      }
      keys.insert(keys.end(), cur.begin(), cur.end());
      prev = keys.data() + static_cast<size_t>(n) * ks;
      n++;
    }
    return Napi::Buffer<uint8_t>::Copy(env, keys.data(), keys.size());
  });
}

// mapLookupBatch(fd, chunk, deleteToo) -> { keys, values, count } for the whole map.
Napi::Value MapLookupBatch(const Napi::CallbackInfo &info) {
  return Guarded(info, "ERR_BPF_MAP_LOOKUP_BATCH", "bpf_map_lookup_batch", [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    int fd = ArgInt(info, 0, "fd");
    uint32_t chunk = std::max<uint32_t>(1, ArgU32(info, 1, "chunk"));
    bool andDelete = ArgBool(info, 2, "andDelete");
    const char *op = andDelete ? "bpf_map_lookup_and_delete_batch" : "bpf_map_lookup_batch";
    MapMeta m = MetaFor(env, fd);
    const size_t ks = m.keySize, vs = ValueBufSize(m);
    std::vector<uint8_t> keys, vals;
    std::vector<uint8_t> inb(std::max<size_t>(ks, 8)), outb(std::max<size_t>(ks, 8));
    bool first = true;
    size_t count = 0;
    for (;;) {
      keys.resize((count + chunk) * ks);
      vals.resize((count + chunk) * vs);
      __u32 n = chunk;
      LIBBPF_OPTS(bpf_map_batch_opts, opts);
      int r = andDelete
          ? bpf_map_lookup_and_delete_batch(fd, first ? nullptr : inb.data(), outb.data(),
                                            keys.data() + count * ks, vals.data() + count * vs, &n, &opts)
          : bpf_map_lookup_batch(fd, first ? nullptr : inb.data(), outb.data(),
                                 keys.data() + count * ks, vals.data() + count * vs, &n, &opts);
      int e = r < 0 ? ErrnoOf(r) : 0;
      if (e != 0 && e != ENOENT) {
        if (e == ENOSPC && n == 0 && chunk < (1u << 24)) {  // a hash bucket larger than chunk
          chunk *= 2;
          continue;
        }
        Fail("ERR_BPF_MAP_LOOKUP_BATCH", op, e,
             "batch lookup of " + MapLabel(m, fd) + " after " + std::to_string(count) + " entries");
      }
      count += n;
      if (e == ENOENT) break;
      memcpy(inb.data(), outb.data(), inb.size());
      first = false;
    }
    Napi::Object o = Napi::Object::New(env);
    o.Set("keys", Napi::Buffer<uint8_t>::Copy(env, keys.data(), count * ks));
    o.Set("values", Napi::Buffer<uint8_t>::Copy(env, vals.data(), count * vs));
    o.Set("count", static_cast<double>(count));
    return o;
  });
}

// The packed keys and values of an update batch are exactly `count` entries of the map (checked
// before any syscall: the kernel would read past the Buffers otherwise).
static void CheckUpdateBatchSizes(const MapMeta &m, int fd, const Napi::Buffer<uint8_t> &keys,
                                  const Napi::Buffer<uint8_t> &vals, uint32_t count) {
  const size_t vs = ValueBufSize(m);
  if (keys.Length() != count * static_cast<size_t>(m.keySize))
    Fail("ERR_BPF_MAP_UPDATE_BATCH", "bpf_map_update_batch", EINVAL,
         "keys are " + std::to_string(keys.Length()) + " bytes; " + std::to_string(count) + " keys of " +
             MapLabel(m, fd) + " need " + std::to_string(count * static_cast<size_t>(m.keySize)));
  if (vals.Length() != count * vs)
    Fail("ERR_BPF_MAP_UPDATE_BATCH", "bpf_map_update_batch", EINVAL,
         "values are " + std::to_string(vals.Length()) + " bytes; " + std::to_string(count) + " values of " +
             MapLabel(m, fd) + " need " + std::to_string(count * vs));
}

// mapUpdateBatch(fd, keys, values, count, elemFlags) -> count
Napi::Value MapUpdateBatch(const Napi::CallbackInfo &info) {
  return Guarded(info, "ERR_BPF_MAP_UPDATE_BATCH", "bpf_map_update_batch", [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    int fd = ArgInt(info, 0, "fd");
    auto keys = ArgBuf(info, 1, "keys");
    auto vals = ArgBuf(info, 2, "values");
    uint32_t count = ArgU32(info, 3, "count");
    uint64_t elemFlags = ArgU32(info, 4, "elemFlags");
    MapMeta m = MetaFor(env, fd);
    CheckUpdateBatchSizes(m, fd, keys, vals, count);
    if (count == 0) return Napi::Number::New(env, 0);
    __u32 n = count;
    LIBBPF_OPTS(bpf_map_batch_opts, opts, .elem_flags = elemFlags);
    int r = bpf_map_update_batch(fd, keys.Data(), vals.Data(), &n, &opts);
    if (r < 0)
      Fail("ERR_BPF_MAP_UPDATE_BATCH", "bpf_map_update_batch", ErrnoOf(r),
           "batch update of " + MapLabel(m, fd) + " stopped after " + std::to_string(n) + " of " +
               std::to_string(count) + " entries");
    return Napi::Number::New(env, n);
  });
}

// mapUpdateBatchAsync(fd, keys, values, count, elemFlags) -> Promise<count>: the same syscall on a
// libuv worker thread, so that the kernel's work on a large batch (hash inserts, LPM trie nodes:
// seconds for millions of entries) runs beside the JS thread. Sizes are checked here, before
// queueing. The worker holds references to both Buffers (the caller must not change them until
// the promise settles) and a dup of the fd (the caller may close its own meanwhile). Several in
// flight on one map are allowed by the kernel (its own locks), but the caller orders its writes.
class UpdateBatchWorker : public Napi::AsyncWorker {
 public:
  UpdateBatchWorker(Napi::Env env, int fd, Napi::Buffer<uint8_t> keys, Napi::Buffer<uint8_t> vals, uint32_t count,
                    uint64_t elemFlags, std::string label)
      : Napi::AsyncWorker(env, "tortie:mapUpdateBatch"), deferred_(Napi::Promise::Deferred::New(env)), fd_(fd),
        keys_(Napi::Persistent(keys)), vals_(Napi::Persistent(vals)), keyData_(keys.Data()), valData_(vals.Data()),
        count_(count), elemFlags_(elemFlags), label_(std::move(label)),
        failure_("ERR_BPF_MAP_UPDATE_BATCH", "bpf_map_update_batch", 0, "") {}
  ~UpdateBatchWorker() override {
    if (fd_ >= 0) close(fd_);
  }
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    if (count_ == 0) return;
    __u32 n = count_;
    LIBBPF_OPTS(bpf_map_batch_opts, opts, .elem_flags = elemFlags_);
    int r = bpf_map_update_batch(fd_, keyData_, valData_, &n, &opts);
    done_ = n;
    if (r < 0) {
      failure_ = BpfFailure("ERR_BPF_MAP_UPDATE_BATCH", "bpf_map_update_batch", ErrnoOf(r),
                            "batch update of " + label_ + " stopped after " + std::to_string(n) + " of " +
                                std::to_string(count_) + " entries");
      SetError(failure_.detail);
    }
  }
  void OnOK() override { deferred_.Resolve(Napi::Number::New(Env(), done_)); }
  void OnError(const Napi::Error &) override {
    Napi::Env env = Env();
    try {
      deferred_.Reject(MakeError(env, failure_).Value());
    } catch (...) {
      if (env.IsExceptionPending()) env.GetAndClearPendingException();
    }
  }

 private:
  Napi::Promise::Deferred deferred_;
  int fd_;
  Napi::Reference<Napi::Buffer<uint8_t>> keys_, vals_;
  const uint8_t *keyData_, *valData_;
  uint32_t count_;
  uint64_t elemFlags_;
  std::string label_;
  uint32_t done_ = 0;
  BpfFailure failure_;
};

Napi::Value MapUpdateBatchAsync(const Napi::CallbackInfo &info) {
  return Guarded(info, "ERR_BPF_MAP_UPDATE_BATCH", "bpf_map_update_batch", [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    int fd = ArgInt(info, 0, "fd");
    auto keys = ArgBuf(info, 1, "keys");
    auto vals = ArgBuf(info, 2, "values");
    uint32_t count = ArgU32(info, 3, "count");
    uint64_t elemFlags = ArgU32(info, 4, "elemFlags");
    MapMeta m = MetaFor(env, fd);
    CheckUpdateBatchSizes(m, fd, keys, vals, count);
    int dfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    if (dfd < 0) Fail("ERR_BPF_MAP_UPDATE_BATCH", "fcntl", errno, "duplicate map fd " + std::to_string(fd));
    auto *w = new UpdateBatchWorker(env, dfd, keys, vals, count, elemFlags, MapLabel(m, fd));
    Napi::Promise p = w->Promise();
    w->Queue();
    return p;
  });
}

// mapDeleteBatch(fd, keys, count) -> count
Napi::Value MapDeleteBatch(const Napi::CallbackInfo &info) {
  return Guarded(info, "ERR_BPF_MAP_DELETE_BATCH", "bpf_map_delete_batch", [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    int fd = ArgInt(info, 0, "fd");
    auto keys = ArgBuf(info, 1, "keys");
    uint32_t count = ArgU32(info, 2, "count");
    MapMeta m = MetaFor(env, fd);
    if (keys.Length() != count * static_cast<size_t>(m.keySize))
      Fail("ERR_BPF_MAP_DELETE_BATCH", "bpf_map_delete_batch", EINVAL,
           "keys are " + std::to_string(keys.Length()) + " bytes; " + std::to_string(count) + " keys of " +
               MapLabel(m, fd) + " need " + std::to_string(count * static_cast<size_t>(m.keySize)));
    if (count == 0) return Napi::Number::New(env, 0);
    __u32 n = count;
    LIBBPF_OPTS(bpf_map_batch_opts, opts);
    int r = bpf_map_delete_batch(fd, keys.Data(), &n, &opts);
    if (r < 0)
      Fail("ERR_BPF_MAP_DELETE_BATCH", "bpf_map_delete_batch", ErrnoOf(r),
           "batch delete from " + MapLabel(m, fd) + " stopped after " + std::to_string(n) + " of " +
               std::to_string(count) + " keys");
    return Napi::Number::New(env, n);
  });
}

// mapInfo(fd) -> { type, id, keySize, valueSize, maxEntries, flags, name } (always fresh)
Napi::Value MapInfo(const Napi::CallbackInfo &info) {
  return Guarded(info, "ERR_BPF_MAP_INFO", "bpf_obj_get_info_by_fd", [&]() -> Napi::Value {
    int fd = ArgInt(info, 0, "fd");
    if (FdKindOf(fd) != FdKind::Map)
      Fail("ERR_BPF_MAP_INFO", "bpf_obj_get_info_by_fd", EINVAL, "fd " + std::to_string(fd) + " is not a BPF map");
    return MetaToJs(info.Env(), QueryMapMeta(fd));
  });
}

// mapCreate(type, keySize, valueSize, maxEntries, flags, name) -> owned fd
Napi::Value MapCreate(const Napi::CallbackInfo &info) {
  return Guarded(info, "ERR_BPF_MAP_CREATE", "bpf_map_create", [&]() -> Napi::Value {
    uint32_t type = ArgU32(info, 0, "type"), ks = ArgU32(info, 1, "keySize"),
             vs = ArgU32(info, 2, "valueSize"), max = ArgU32(info, 3, "maxEntries"),
             flags = ArgU32(info, 4, "flags");
    std::string name = ArgOptStr(info, 5, "name");
    LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = flags);
    LogCapture cap;
    int fd = bpf_map_create(static_cast<enum bpf_map_type>(type), name.empty() ? nullptr : name.c_str(),
                            ks, vs, max, &opts);
    if (fd < 0)
      Fail("ERR_BPF_MAP_CREATE", "bpf_map_create", ErrnoOf(fd),
           "create map '" + name + "' type " + std::to_string(type) + " key " + std::to_string(ks) +
               " value " + std::to_string(vs) + " max_entries " + std::to_string(max),
           cap.Take());
    Own(info.Env(), fd, FdKind::Map);
    return Napi::Number::New(info.Env(), fd);
  });
}

// objGet(path, kind: "map" | "prog" | "any") -> owned fd of a pinned object
Napi::Value ObjGet(const Napi::CallbackInfo &info) {
  return Guarded(info, "ERR_BPF_OBJ_GET", "bpf_obj_get", [&]() -> Napi::Value {
    std::string path = ArgStr(info, 0, "path");
    std::string want = ArgStr(info, 1, "kind");
    int fd = bpf_obj_get(path.c_str());
    if (fd < 0) Fail("ERR_BPF_OBJ_GET", "bpf_obj_get", ErrnoOf(fd), "open pinned object " + path);
    FdKind kind;
    try {
      kind = FdKindOf(fd);
      if ((want == "map" && kind != FdKind::Map) || (want == "prog" && kind != FdKind::Prog))
        Fail("ERR_BPF_OBJ_GET", "bpf_obj_get", EINVAL, "pinned object " + path + " is not a BPF " + want);
      Own(info.Env(), fd, kind);
    } catch (...) {
      close(fd);
      throw;
    }
    return Napi::Number::New(info.Env(), fd);
  });
}

// objPin(fd, path)
Napi::Value ObjPin(const Napi::CallbackInfo &info) {
  return Guarded(info, "ERR_BPF_OBJ_PIN", "bpf_obj_pin", [&]() -> Napi::Value {
    int fd = ArgInt(info, 0, "fd");
    std::string path = ArgStr(info, 1, "path");
    int r = bpf_obj_pin(fd, path.c_str());
    if (r < 0) Fail("ERR_BPF_OBJ_PIN", "bpf_obj_pin", ErrnoOf(r), "pin fd " + std::to_string(fd) + " at " + path);
    return info.Env().Undefined();
  });
}

// fdDup(fd) -> owned fd referring to the same map/prog
Napi::Value FdDup(const Napi::CallbackInfo &info) {
  return Guarded(info, "ERR_BPF_FD_DUP", "fcntl", [&]() -> Napi::Value {
    int fd = ArgInt(info, 0, "fd");
    FdKind kind = FdKindOf(fd);
    int nfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    if (nfd < 0) Fail("ERR_BPF_FD_DUP", "fcntl", errno, "duplicate fd " + std::to_string(fd));
    try {
      Own(info.Env(), nfd, kind);
    } catch (...) {
      close(nfd);
      throw;
    }
    return Napi::Number::New(info.Env(), nfd);
  });
}

// fdClose(fd): only fds the addon handed out may be closed here.
Napi::Value FdClose(const Napi::CallbackInfo &info) {
  return Guarded(info, "ERR_BPF_FD_CLOSE", "close", [&]() -> Napi::Value {
    int fd = ArgInt(info, 0, "fd");
    auto &fds = State(info.Env()).fds;
    auto it = fds.find(fd);
    if (it == fds.end())
      Fail("ERR_BPF_FD_CLOSE", "close", EBADF, "fd " + std::to_string(fd) + " is not owned by the addon");
    fds.erase(it);
    close(fd);
    return info.Env().Undefined();
  });
}

// mapFdById(id) -> owned fd
Napi::Value MapFdById(const Napi::CallbackInfo &info) {
  return Guarded(info, "ERR_BPF_MAP_GET", "bpf_map_get_fd_by_id", [&]() -> Napi::Value {
    uint32_t id = ArgU32(info, 0, "id");
    int fd = bpf_map_get_fd_by_id(id);
    if (fd < 0) Fail("ERR_BPF_MAP_GET", "bpf_map_get_fd_by_id", ErrnoOf(fd), "open map id " + std::to_string(id));
    try {
      Own(info.Env(), fd, FdKind::Map);
    } catch (...) {
      close(fd);
      throw;
    }
    return Napi::Number::New(info.Env(), fd);
  });
}

Napi::Value OwnedFdCount(const Napi::CallbackInfo &info) {
  return Guarded(info, "ERR_BPF_INTERNAL", "ownedFdCount", [&]() -> Napi::Value {
    return Napi::Number::New(info.Env(), static_cast<double>(State(info.Env()).fds.size()));
  });
}

Napi::Value PossibleCpusJs(const Napi::CallbackInfo &info) {
  return Guarded(info, "ERR_BPF_CPUS", "libbpf_num_possible_cpus", [&]() -> Napi::Value {
    return Napi::Number::New(info.Env(), PossibleCpus());
  });
}

}  // namespace

void InitMaps(Napi::Env env, Napi::Object exports) {
  exports.Set("mapLookup", Napi::Function::New(env, MapLookup, "mapLookup"));
  exports.Set("mapUpdate", Napi::Function::New(env, MapUpdate, "mapUpdate"));
  exports.Set("mapDelete", Napi::Function::New(env, MapDelete, "mapDelete"));
  exports.Set("mapGetNextKey", Napi::Function::New(env, MapGetNextKey, "mapGetNextKey"));
  exports.Set("mapKeys", Napi::Function::New(env, MapKeys, "mapKeys"));
  exports.Set("mapLookupBatch", Napi::Function::New(env, MapLookupBatch, "mapLookupBatch"));
  exports.Set("mapUpdateBatch", Napi::Function::New(env, MapUpdateBatch, "mapUpdateBatch"));
  exports.Set("mapUpdateBatchAsync", Napi::Function::New(env, MapUpdateBatchAsync, "mapUpdateBatchAsync"));
  exports.Set("mapDeleteBatch", Napi::Function::New(env, MapDeleteBatch, "mapDeleteBatch"));
  exports.Set("mapInfo", Napi::Function::New(env, MapInfo, "mapInfo"));
  exports.Set("mapCreate", Napi::Function::New(env, MapCreate, "mapCreate"));
  exports.Set("objGet", Napi::Function::New(env, ObjGet, "objGet"));
  exports.Set("objPin", Napi::Function::New(env, ObjPin, "objPin"));
  exports.Set("mapFdById", Napi::Function::New(env, MapFdById, "mapFdById"));
  exports.Set("fdDup", Napi::Function::New(env, FdDup, "fdDup"));
  exports.Set("fdClose", Napi::Function::New(env, FdClose, "fdClose"));
  exports.Set("ownedFdCount", Napi::Function::New(env, OwnedFdCount, "ownedFdCount"));
  exports.Set("possibleCpus", Napi::Function::New(env, PossibleCpusJs, "possibleCpus"));
}

}  // namespace tortie
