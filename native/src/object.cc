// BpfObject: one libbpf bpf_object. Lifecycle: open (constructor) -> configure (constants, map
// pin paths / max_entries / reuse fds, program autoload) -> load() off the event loop -> use the
// fds of its programs and maps (owned by the object: dup them to outlive it) -> close().
// Closed by close(), by GC, or by the env cleanup hook, whichever comes first.
#include "common.h"

#include <cstring>

#include <bpf/btf.h>

namespace tortie {
namespace {

class BpfObjectWrap : public Napi::ObjectWrap<BpfObjectWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "BpfObject", {
      InstanceMethod<&BpfObjectWrap::SetConstant>("setConstant"),
      InstanceMethod<&BpfObjectWrap::Constants>("constants"),
      InstanceMethod<&BpfObjectWrap::SetMapPinPath>("setMapPinPath"),
      InstanceMethod<&BpfObjectWrap::SetMapMaxEntries>("setMapMaxEntries"),
      InstanceMethod<&BpfObjectWrap::ReuseMapFd>("reuseMapFd"),
      InstanceMethod<&BpfObjectWrap::SetProgramAutoload>("setProgramAutoload"),
      InstanceMethod<&BpfObjectWrap::Load>("load"),
      InstanceMethod<&BpfObjectWrap::Programs>("programs"),
      InstanceMethod<&BpfObjectWrap::Maps>("maps"),
      InstanceMethod<&BpfObjectWrap::PinMaps>("pinMaps"),
      InstanceMethod<&BpfObjectWrap::UnpinMaps>("unpinMaps"),
      InstanceMethod<&BpfObjectWrap::PinMap>("pinMap"),
      InstanceMethod<&BpfObjectWrap::UnpinMap>("unpinMap"),
      InstanceMethod<&BpfObjectWrap::PinProgram>("pinProgram"),
      InstanceMethod<&BpfObjectWrap::UnpinProgram>("unpinProgram"),
      InstanceMethod<&BpfObjectWrap::Close>("close"),
    });
  }

  // new BpfObject(path, pinRoot | null, objectName | null, kernelLogLevel)
  explicit BpfObjectWrap(const Napi::CallbackInfo &info) : Napi::ObjectWrap<BpfObjectWrap>(info) {
    Napi::Env env = info.Env();
    try {
      path_ = ArgStr(info, 0, "path");
      std::string pinRoot = ArgOptStr(info, 1, "pinRoot");
      std::string name = ArgOptStr(info, 2, "objectName");
      kernelLogLevel_ = ArgIsNullish(info, 3) ? 0 : ArgU32(info, 3, "kernelLogLevel");
      LIBBPF_OPTS(bpf_object_open_opts, opts, .object_name = name.empty() ? nullptr : name.c_str(),
                  .pin_root_path = pinRoot.empty() ? nullptr : pinRoot.c_str(),
                  .kernel_log_level = kernelLogLevel_);
      LogCapture cap;
      obj_ = bpf_object__open_file(path_.c_str(), &opts);
      if (obj_ == nullptr)
        Fail("ERR_BPF_OBJECT_OPEN", "bpf_object__open_file", errno ? errno : EINVAL, "open BPF object " + path_,
             cap.Take());
    } catch (const BpfFailure &f) {
      throw MakeError(env, f);  // node-addon-api turns this into a JS throw of the BpfError
    } catch (const Napi::Error &) {
      throw;
    } catch (const std::exception &e) {
      throw MakeError(env, "ERR_BPF_OBJECT_OPEN", "bpf_object__open_file", e);
    }
    env_ = env;
    napi_add_env_cleanup_hook(env_, CleanupHook, this);
    hooked_ = true;
  }

  ~BpfObjectWrap() override { Release(); }

 private:
  static void CleanupHook(void *arg) {
    auto *self = static_cast<BpfObjectWrap *>(arg);
    self->hooked_ = false;  // the env is removing it
    self->Release();
  }

  void Release() {
    // A load in flight owns obj_ on a worker thread; only the worker's completion may free it.
    if (obj_ != nullptr && !loading_) {
      bpf_object__close(obj_);
      obj_ = nullptr;
    }
    if (hooked_ && obj_ == nullptr) {
      napi_remove_env_cleanup_hook(env_, CleanupHook, this);
      hooked_ = false;
    }
  }

  bpf_object *Obj(const char *code, const char *op) {
    if (obj_ == nullptr) Fail(code, op, EBADF, "BPF object " + path_ + " is closed");
    if (loading_) Fail(code, op, EBUSY, "BPF object " + path_ + " is being loaded");
    return obj_;
  }
  bpf_object *Unloaded(const char *code, const char *op) {
    bpf_object *o = Obj(code, op);
    if (loadAttempted_) Fail(code, op, EINVAL, "BPF object " + path_ + " was already loaded; configure before load()");
    return o;
  }
  bpf_map *MapByName(bpf_object *o, const std::string &name, const char *code, const char *op) {
    bpf_map *m = bpf_object__find_map_by_name(o, name.c_str());
    if (m == nullptr) {
      std::string known;
      bpf_map *it;
      bpf_object__for_each_map(it, o) known += (known.empty() ? "" : ", ") + std::string(bpf_map__name(it));
      Fail(code, op, ENOENT, "no map named '" + name + "' in " + path_ + " (maps: " + known + ")");
    }
    return m;
  }
  bpf_program *ProgByName(bpf_object *o, const std::string &name, const char *code, const char *op) {
    bpf_program *p = bpf_object__find_program_by_name(o, name.c_str());
    if (p == nullptr) {
      std::string known;
      bpf_program *it;
      bpf_object__for_each_program(it, o) known += (known.empty() ? "" : ", ") + std::string(bpf_program__name(it));
      Fail(code, op, ENOENT, "no program named '" + name + "' in " + path_ + " (programs: " + known + ")");
    }
    return p;
  }

  struct GlobalVar {
    std::string name, section;
    uint32_t offset, size;
  };
  // Global variables by data section, from the object's BTF (DATASEC entries).
  std::vector<GlobalVar> Globals(bpf_object *o) {
    std::vector<GlobalVar> out;
    const struct btf *btf = bpf_object__btf(o);
    if (btf == nullptr) return out;
    const uint32_t n = btf__type_cnt(btf);
    for (uint32_t id = 1; id < n; id++) {
      const struct btf_type *t = btf__type_by_id(btf, id);
      if (!btf_is_datasec(t)) continue;
      const char *sec = btf__name_by_offset(btf, t->name_off);
      // Map definitions and the license are not settable globals.
      if (sec == nullptr || strcmp(sec, ".maps") == 0 || strcmp(sec, "license") == 0) continue;
      const struct btf_var_secinfo *vsi = btf_var_secinfos(t);
      for (uint16_t j = 0; j < btf_vlen(t); j++) {
        const struct btf_type *v = btf__type_by_id(btf, vsi[j].type);
        if (!btf_is_var(v)) continue;
        out.push_back({btf__name_by_offset(btf, v->name_off), sec ? sec : "", vsi[j].offset, vsi[j].size});
      }
    }
    return out;
  }

  static bool EndsWith(const std::string &s, const std::string &suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
  }

  // setConstant(name, bytes): write a global (`const volatile` in .rodata, or .data/.bss) before load.
  Napi::Value SetConstant(const Napi::CallbackInfo &info) {
    return Guarded(info, "ERR_BPF_OBJECT_CONSTANT", "bpf_map__initial_value", [&]() -> Napi::Value {
      const char *code = "ERR_BPF_OBJECT_CONSTANT", *op = "bpf_map__initial_value";
      bpf_object *o = Unloaded(code, op);
      std::string name = ArgStr(info, 0, "name");
      auto bytes = ArgBuf(info, 1, "bytes");
      std::vector<GlobalVar> globals = Globals(o);
      const GlobalVar *g = nullptr;
      for (const auto &v : globals) if (v.name == name) g = &v;
      if (g == nullptr) {
        std::string known;
        for (const auto &v : globals) known += (known.empty() ? "" : ", ") + v.name;
        Fail(code, op, ENOENT, "no global variable '" + name + "' in " + path_ + " (globals: " +
                                   (known.empty() ? "none" : known) + ")");
      }
      if (bytes.Length() != g->size)
        Fail(code, op, EINVAL, "constant '" + name + "' is " + std::to_string(g->size) + " bytes; got " +
                                   std::to_string(bytes.Length()));
      bpf_map *m = nullptr, *it;
      bpf_object__for_each_map(it, o) {
        if (bpf_map__is_internal(it) && EndsWith(bpf_map__name(it), g->section)) m = it;
      }
      if (m == nullptr) Fail(code, op, ENOENT, "no internal map for section " + g->section + " in " + path_);
      // libbpf 1.1 exposes the section read-only; copy, patch, and set it back.
      size_t sz = 0;
      const void *data = bpf_map__initial_value(m, &sz);
      if (data == nullptr || static_cast<size_t>(g->offset) + g->size > sz)
        Fail(code, op, EINVAL, "section " + g->section + " of " + path_ + " has no room for '" + name + "'");
      std::vector<uint8_t> sec(static_cast<const uint8_t *>(data), static_cast<const uint8_t *>(data) + sz);
      memcpy(sec.data() + g->offset, bytes.Data(), g->size);
      int r = bpf_map__set_initial_value(m, sec.data(), sec.size());
      if (r < 0) Fail(code, "bpf_map__set_initial_value", ErrnoOf(r), "write constant '" + name + "' into " + g->section);
      return info.Env().Undefined();
    });
  }

  // constants() -> [{ name, section, offset, size }]
  Napi::Value Constants(const Napi::CallbackInfo &info) {
    return Guarded(info, "ERR_BPF_OBJECT_CONSTANT", "btf", [&]() -> Napi::Value {
      Napi::Env env = info.Env();
      auto globals = Globals(Obj("ERR_BPF_OBJECT_CONSTANT", "btf"));
      Napi::Array a = Napi::Array::New(env, globals.size());
      for (size_t i = 0; i < globals.size(); i++) {
        Napi::Object o = Napi::Object::New(env);
        o.Set("name", globals[i].name);
        o.Set("section", globals[i].section);
        o.Set("offset", globals[i].offset);
        o.Set("size", globals[i].size);
        a.Set(static_cast<uint32_t>(i), o);
      }
      return a;
    });
  }

  Napi::Value SetMapPinPath(const Napi::CallbackInfo &info) {
    return Guarded(info, "ERR_BPF_OBJECT_CONFIG", "bpf_map__set_pin_path", [&]() -> Napi::Value {
      const char *code = "ERR_BPF_OBJECT_CONFIG", *op = "bpf_map__set_pin_path";
      bpf_map *m = MapByName(Unloaded(code, op), ArgStr(info, 0, "map"), code, op);
      std::string p = ArgOptStr(info, 1, "path");
      int r = bpf_map__set_pin_path(m, p.empty() ? nullptr : p.c_str());
      if (r < 0) Fail(code, op, ErrnoOf(r), "set pin path of map " + std::string(bpf_map__name(m)) + " to " + p);
      return info.Env().Undefined();
    });
  }

  Napi::Value SetMapMaxEntries(const Napi::CallbackInfo &info) {
    return Guarded(info, "ERR_BPF_OBJECT_CONFIG", "bpf_map__set_max_entries", [&]() -> Napi::Value {
      const char *code = "ERR_BPF_OBJECT_CONFIG", *op = "bpf_map__set_max_entries";
      bpf_map *m = MapByName(Unloaded(code, op), ArgStr(info, 0, "map"), code, op);
      uint32_t n = ArgU32(info, 1, "maxEntries");
      int r = bpf_map__set_max_entries(m, n);
      if (r < 0) Fail(code, op, ErrnoOf(r), "set max_entries of map " + std::string(bpf_map__name(m)));
      return info.Env().Undefined();
    });
  }

  Napi::Value ReuseMapFd(const Napi::CallbackInfo &info) {
    return Guarded(info, "ERR_BPF_OBJECT_CONFIG", "bpf_map__reuse_fd", [&]() -> Napi::Value {
      const char *code = "ERR_BPF_OBJECT_CONFIG", *op = "bpf_map__reuse_fd";
      bpf_map *m = MapByName(Unloaded(code, op), ArgStr(info, 0, "map"), code, op);
      int fd = ArgInt(info, 1, "fd");
      int r = bpf_map__reuse_fd(m, fd);
      if (r < 0) Fail(code, op, ErrnoOf(r), "reuse fd " + std::to_string(fd) + " for map " + bpf_map__name(m));
      return info.Env().Undefined();
    });
  }

  Napi::Value SetProgramAutoload(const Napi::CallbackInfo &info) {
    return Guarded(info, "ERR_BPF_OBJECT_CONFIG", "bpf_program__set_autoload", [&]() -> Napi::Value {
      const char *code = "ERR_BPF_OBJECT_CONFIG", *op = "bpf_program__set_autoload";
      bpf_program *p = ProgByName(Unloaded(code, op), ArgStr(info, 0, "program"), code, op);
      int r = bpf_program__set_autoload(p, ArgBool(info, 1, "autoload"));
      if (r < 0) Fail(code, op, ErrnoOf(r), "set autoload of program " + std::string(bpf_program__name(p)));
      return info.Env().Undefined();
    });
  }

  class LoadWorker : public Napi::AsyncWorker {
   public:
    LoadWorker(Napi::Env env, BpfObjectWrap *w)
        : Napi::AsyncWorker(env, "tortie:objectLoad"), deferred_(Napi::Promise::Deferred::New(env)), w_(w) {
      self_ = Napi::Persistent(w->Value());  // keeps the wrap alive while the worker runs
    }
    Napi::Promise Promise() { return deferred_.Promise(); }

   protected:
    void Execute() override {
      LogCapture cap(w_->kernelLogLevel_ != 0);
      int r = bpf_object__load(w_->obj_);
      log_ = cap.Take();
      if (r < 0) {
        err_ = ErrnoOf(r);
        SetError("load failed");
      }
    }
    void OnOK() override {
      w_->loading_ = false;
      deferred_.Resolve(Napi::String::New(Env(), log_));
    }
    void OnError(const Napi::Error &) override {
      w_->loading_ = false;
      Napi::Env env = Env();
      try {
        deferred_.Reject(MakeError(env, BpfFailure("ERR_BPF_OBJECT_LOAD", "bpf_object__load", err_,
                                                   "load of BPF object " + w_->path_ + " failed", log_)).Value());
      } catch (...) {
        if (env.IsExceptionPending()) env.GetAndClearPendingException();
      }
    }

   private:
    Napi::Promise::Deferred deferred_;
    BpfObjectWrap *w_;
    Napi::ObjectReference self_;
    std::string log_;
    int err_ = 0;
  };

  // load() -> Promise<string> (libbpf's non-debug output); rejects with the verifier log.
  Napi::Value Load(const Napi::CallbackInfo &info) {
    return Guarded(info, "ERR_BPF_OBJECT_LOAD", "bpf_object__load", [&]() -> Napi::Value {
      Unloaded("ERR_BPF_OBJECT_LOAD", "bpf_object__load");
      loadAttempted_ = true;  // libbpf allows one load attempt per object, successful or not
      loading_ = true;
      auto *w = new LoadWorker(info.Env(), this);
      Napi::Promise p = w->Promise();
      w->Queue();
      return p;
    });
  }

  // programs() -> [{ name, section, type, fd, id }]; fd -1 and id 0 before load.
  Napi::Value Programs(const Napi::CallbackInfo &info) {
    return Guarded(info, "ERR_BPF_OBJECT_PROGRAMS", "bpf_object__for_each_program", [&]() -> Napi::Value {
      Napi::Env env = info.Env();
      bpf_object *o = Obj("ERR_BPF_OBJECT_PROGRAMS", "bpf_object__for_each_program");
      Napi::Array a = Napi::Array::New(env);
      bpf_program *p;
      uint32_t i = 0;
      bpf_object__for_each_program(p, o) {
        Napi::Object e = Napi::Object::New(env);
        int fd = bpf_program__fd(p);
        uint32_t id = 0;
        if (fd >= 0) {
          struct bpf_prog_info pi;
          memset(&pi, 0, sizeof(pi));
          __u32 len = sizeof(pi);
          if (bpf_obj_get_info_by_fd(fd, &pi, &len) == 0) id = pi.id;
        }
        e.Set("name", bpf_program__name(p));
        e.Set("section", bpf_program__section_name(p));
        e.Set("type", static_cast<uint32_t>(bpf_program__type(p)));
        e.Set("autoload", bpf_program__autoload(p));
        e.Set("fd", fd < 0 ? -1 : fd);
        e.Set("id", id);
        a.Set(i++, e);
      }
      return a;
    });
  }

  // maps() -> [{ name, type, keySize, valueSize, maxEntries, fd, pinPath, internal, id }]
  Napi::Value Maps(const Napi::CallbackInfo &info) {
    return Guarded(info, "ERR_BPF_OBJECT_MAPS", "bpf_object__for_each_map", [&]() -> Napi::Value {
      Napi::Env env = info.Env();
      bpf_object *o = Obj("ERR_BPF_OBJECT_MAPS", "bpf_object__for_each_map");
      Napi::Array a = Napi::Array::New(env);
      bpf_map *m;
      uint32_t i = 0;
      bpf_object__for_each_map(m, o) {
        Napi::Object e = Napi::Object::New(env);
        int fd = bpf_map__fd(m);
        e.Set("name", bpf_map__name(m));
        e.Set("type", static_cast<uint32_t>(bpf_map__type(m)));
        e.Set("keySize", bpf_map__key_size(m));
        e.Set("valueSize", bpf_map__value_size(m));
        e.Set("maxEntries", bpf_map__max_entries(m));
        e.Set("fd", fd < 0 ? -1 : fd);
        e.Set("id", fd >= 0 ? QueryMapMeta(fd).id : 0);
        const char *pp = bpf_map__pin_path(m);
        e.Set("pinPath", pp ? Napi::Value(Napi::String::New(env, pp)) : env.Null());
        e.Set("pinned", bpf_map__is_pinned(m));
        e.Set("internal", bpf_map__is_internal(m));
        a.Set(i++, e);
      }
      return a;
    });
  }

  Napi::Value PinMaps(const Napi::CallbackInfo &info) {
    return Guarded(info, "ERR_BPF_OBJECT_PIN", "bpf_object__pin_maps", [&]() -> Napi::Value {
      std::string dir = ArgOptStr(info, 0, "dir");
      LogCapture cap;
      int r = bpf_object__pin_maps(Obj("ERR_BPF_OBJECT_PIN", "bpf_object__pin_maps"), dir.empty() ? nullptr : dir.c_str());
      if (r < 0) Fail("ERR_BPF_OBJECT_PIN", "bpf_object__pin_maps", ErrnoOf(r), "pin maps of " + path_ + (dir.empty() ? "" : " under " + dir), cap.Take());
      return info.Env().Undefined();
    });
  }

  Napi::Value UnpinMaps(const Napi::CallbackInfo &info) {
    return Guarded(info, "ERR_BPF_OBJECT_UNPIN", "bpf_object__unpin_maps", [&]() -> Napi::Value {
      std::string dir = ArgOptStr(info, 0, "dir");
      LogCapture cap;
      int r = bpf_object__unpin_maps(Obj("ERR_BPF_OBJECT_UNPIN", "bpf_object__unpin_maps"), dir.empty() ? nullptr : dir.c_str());
      if (r < 0) Fail("ERR_BPF_OBJECT_UNPIN", "bpf_object__unpin_maps", ErrnoOf(r), "unpin maps of " + path_ + (dir.empty() ? "" : " under " + dir), cap.Take());
      return info.Env().Undefined();
    });
  }

  // pinMap(name, path | null): null uses the map's configured pin path.
  Napi::Value PinMap(const Napi::CallbackInfo &info) {
    return Guarded(info, "ERR_BPF_OBJECT_PIN", "bpf_map__pin", [&]() -> Napi::Value {
      bpf_map *m = MapByName(Obj("ERR_BPF_OBJECT_PIN", "bpf_map__pin"), ArgStr(info, 0, "map"), "ERR_BPF_OBJECT_PIN", "bpf_map__pin");
      std::string p = ArgOptStr(info, 1, "path");
      LogCapture cap;
      int r = bpf_map__pin(m, p.empty() ? nullptr : p.c_str());
      if (r < 0) Fail("ERR_BPF_OBJECT_PIN", "bpf_map__pin", ErrnoOf(r), "pin map " + std::string(bpf_map__name(m)) + (p.empty() ? "" : " at " + p), cap.Take());
      return info.Env().Undefined();
    });
  }

  Napi::Value UnpinMap(const Napi::CallbackInfo &info) {
    return Guarded(info, "ERR_BPF_OBJECT_UNPIN", "bpf_map__unpin", [&]() -> Napi::Value {
      bpf_map *m = MapByName(Obj("ERR_BPF_OBJECT_UNPIN", "bpf_map__unpin"), ArgStr(info, 0, "map"), "ERR_BPF_OBJECT_UNPIN", "bpf_map__unpin");
      std::string p = ArgOptStr(info, 1, "path");
      LogCapture cap;
      int r = bpf_map__unpin(m, p.empty() ? nullptr : p.c_str());
      if (r < 0) Fail("ERR_BPF_OBJECT_UNPIN", "bpf_map__unpin", ErrnoOf(r), "unpin map " + std::string(bpf_map__name(m)) + (p.empty() ? "" : " at " + p), cap.Take());
      return info.Env().Undefined();
    });
  }

  Napi::Value PinProgram(const Napi::CallbackInfo &info) {
    return Guarded(info, "ERR_BPF_OBJECT_PIN", "bpf_program__pin", [&]() -> Napi::Value {
      bpf_program *p = ProgByName(Obj("ERR_BPF_OBJECT_PIN", "bpf_program__pin"), ArgStr(info, 0, "program"), "ERR_BPF_OBJECT_PIN", "bpf_program__pin");
      std::string path = ArgStr(info, 1, "path");
      LogCapture cap;
      int r = bpf_program__pin(p, path.c_str());
      if (r < 0) Fail("ERR_BPF_OBJECT_PIN", "bpf_program__pin", ErrnoOf(r), "pin program " + std::string(bpf_program__name(p)) + " at " + path, cap.Take());
      return info.Env().Undefined();
    });
  }

  Napi::Value UnpinProgram(const Napi::CallbackInfo &info) {
    return Guarded(info, "ERR_BPF_OBJECT_UNPIN", "bpf_program__unpin", [&]() -> Napi::Value {
      bpf_program *p = ProgByName(Obj("ERR_BPF_OBJECT_UNPIN", "bpf_program__unpin"), ArgStr(info, 0, "program"), "ERR_BPF_OBJECT_UNPIN", "bpf_program__unpin");
      std::string path = ArgStr(info, 1, "path");
      LogCapture cap;
      int r = bpf_program__unpin(p, path.c_str());
      if (r < 0) Fail("ERR_BPF_OBJECT_UNPIN", "bpf_program__unpin", ErrnoOf(r), "unpin program " + std::string(bpf_program__name(p)) + " at " + path, cap.Take());
      return info.Env().Undefined();
    });
  }

  // close(): idempotent; refused while a load is in flight.
  Napi::Value Close(const Napi::CallbackInfo &info) {
    return Guarded(info, "ERR_BPF_OBJECT_CLOSE", "bpf_object__close", [&]() -> Napi::Value {
      if (loading_) Fail("ERR_BPF_OBJECT_CLOSE", "bpf_object__close", EBUSY, "BPF object " + path_ + " is being loaded");
      Release();
      return info.Env().Undefined();
    });
  }

  std::string path_;
  bpf_object *obj_ = nullptr;
  bool loading_ = false, loadAttempted_ = false, hooked_ = false;
  uint32_t kernelLogLevel_ = 0;
  napi_env env_ = nullptr;
};

}  // namespace

void InitObject(Napi::Env env, Napi::Object exports) {
  exports.Set("BpfObject", BpfObjectWrap::Define(env));
}

}  // namespace tortie
