// Interface operations: tc clsact attach/detach/query, XDP attach/detach/query, ifname->ifindex.
// Every function takes a network-namespace path first ("" / null = the caller's namespace) and
// runs inside a NetnsGuard, so the interface name/index is resolved and programmed in that
// namespace and the thread always returns to its own namespace afterwards.
#include "common.h"

#include <linux/if_link.h>
#include <net/if.h>

namespace tortie {
namespace {

// iface: a number (ifindex, already in the target namespace) or a name resolved there.
int ResolveIface(const Napi::CallbackInfo &info, size_t i, const std::string &netns, const char *code) {
  if (info[i].IsNumber()) {
    int idx = info[i].As<Napi::Number>().Int32Value();
    if (idx <= 0) Fail(code, "if_nametoindex", EINVAL, "ifindex must be positive, got " + std::to_string(idx));
    return idx;
  }
  std::string name = ArgStr(info, i, "iface");
  unsigned idx = if_nametoindex(name.c_str());
  if (idx == 0)
    Fail(code, "if_nametoindex", errno ? errno : ENODEV,
         "no interface '" + name + "' in " + (netns.empty() ? std::string("the current network namespace") : netns));
  return static_cast<int>(idx);
}

std::string Where(int ifindex, const std::string &netns) {
  return "ifindex " + std::to_string(ifindex) + (netns.empty() ? "" : " in " + netns);
}

enum bpf_tc_attach_point TcPoint(const Napi::CallbackInfo &info, size_t i) {
  std::string d = ArgStr(info, i, "direction");
  if (d == "ingress") return BPF_TC_INGRESS;
  if (d == "egress") return BPF_TC_EGRESS;
  Fail("ERR_BPF_INVALID_ARG", "argument", EINVAL, "direction must be 'ingress' or 'egress', got '" + d + "'");
}

const char *DirName(enum bpf_tc_attach_point p) { return p == BPF_TC_INGRESS ? "ingress" : "egress"; }

Napi::Object FilterToJs(Napi::Env env, int ifindex, const struct bpf_tc_opts &opts) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("ifindex", ifindex);
  o.Set("handle", opts.handle);
  o.Set("priority", opts.priority);
  o.Set("progId", opts.prog_id);
  return o;
}

// ifindex(netns, name) -> number
Napi::Value Ifindex(const Napi::CallbackInfo &info) {
  return Guarded(info, "ERR_BPF_IFINDEX", "if_nametoindex", [&]() -> Napi::Value {
    std::string ns = ArgOptStr(info, 0, "netns");
    ArgStr(info, 1, "name");
    NetnsGuard g(ns);
    return Napi::Number::New(info.Env(), ResolveIface(info, 1, ns, "ERR_BPF_IFINDEX"));
  });
}

// tcAttach(netns, iface, direction, progFd, handle, priority, replace)
//   -> { ifindex, handle, priority, progId }. Creates the clsact qdisc if missing.
Napi::Value TcAttach(const Napi::CallbackInfo &info) {
  return Guarded(info, "ERR_BPF_TC_ATTACH", "bpf_tc_attach", [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    std::string ns = ArgOptStr(info, 0, "netns");
    enum bpf_tc_attach_point point = TcPoint(info, 2);
    int progFd = ArgInt(info, 3, "progFd");
    uint32_t handle = ArgU32(info, 4, "handle"), priority = ArgU32(info, 5, "priority");
    bool replace = ArgBool(info, 6, "replace");
    NetnsGuard g(ns);
    int ifindex = ResolveIface(info, 1, ns, "ERR_BPF_TC_ATTACH");
    LogCapture cap;
    LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = point);
    int r = bpf_tc_hook_create(&hook);
    if (r < 0 && ErrnoOf(r) != EEXIST)
      Fail("ERR_BPF_TC_ATTACH", "bpf_tc_hook_create", ErrnoOf(r), "create clsact qdisc on " + Where(ifindex, ns), cap.Take());
    LIBBPF_OPTS(bpf_tc_opts, opts, .prog_fd = progFd, .flags = replace ? static_cast<__u32>(BPF_TC_F_REPLACE) : 0u,
                .priority = priority);
    opts.handle = handle;
    r = bpf_tc_attach(&hook, &opts);
    if (r < 0)
      Fail("ERR_BPF_TC_ATTACH", "bpf_tc_attach", ErrnoOf(r),
           "attach prog fd " + std::to_string(progFd) + " to tc " + DirName(point) +
               " of " + Where(ifindex, ns) + " (handle " + std::to_string(handle) + ", priority " +
               std::to_string(priority) + (ErrnoOf(r) == EEXIST ? "; a filter is there already, use replace" : "") + ")",
           cap.Take());
    return FilterToJs(env, ifindex, opts);
  });
}

// A call on one existing filter, args (netns, iface, direction, handle, priority): resolves the
// interface and runs `call` inside the namespace. Returns 0 or a positive errno.
struct TcFilterCall {
  std::string ns, log;
  enum bpf_tc_attach_point point = BPF_TC_INGRESS;
  int ifindex = 0;
  struct bpf_tc_opts opts = {};
  std::string What() const {
    return std::string("tc ") + DirName(point) + " filter (handle " + std::to_string(opts.handle) + ", priority " +
           std::to_string(opts.priority) + ") on " + Where(ifindex, ns);
  }
};

template <typename F>
int OnTcFilter(const Napi::CallbackInfo &info, const char *code, TcFilterCall &c, F &&call) {
  c.ns = ArgOptStr(info, 0, "netns");
  c.point = TcPoint(info, 2);
  c.opts.sz = sizeof(c.opts);
  c.opts.handle = ArgU32(info, 3, "handle");
  c.opts.priority = ArgU32(info, 4, "priority");
  NetnsGuard g(c.ns);
  c.ifindex = ResolveIface(info, 1, c.ns, code);
  LogCapture cap;
  LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = c.ifindex, .attach_point = c.point);
  int r = call(&hook, &c.opts);
  c.log = cap.Take();
  return r < 0 ? ErrnoOf(r) : 0;
}

// tcDetach(netns, iface, direction, handle, priority)
Napi::Value TcDetach(const Napi::CallbackInfo &info) {
  return Guarded(info, "ERR_BPF_TC_DETACH", "bpf_tc_detach", [&]() -> Napi::Value {
    TcFilterCall c;
    int e = OnTcFilter(info, "ERR_BPF_TC_DETACH", c, [](bpf_tc_hook *h, bpf_tc_opts *o) { return bpf_tc_detach(h, o); });
    if (e != 0) Fail("ERR_BPF_TC_DETACH", "bpf_tc_detach", e, "detach " + c.What(), c.log);
    return info.Env().Undefined();
  });
}

// tcQuery(netns, iface, direction, handle, priority) -> { ifindex, handle, priority, progId } | null
Napi::Value TcQuery(const Napi::CallbackInfo &info) {
  return Guarded(info, "ERR_BPF_TC_QUERY", "bpf_tc_query", [&]() -> Napi::Value {
    TcFilterCall c;
    int e = OnTcFilter(info, "ERR_BPF_TC_QUERY", c, [](bpf_tc_hook *h, bpf_tc_opts *o) { return bpf_tc_query(h, o); });
    // ENOENT: no such filter; EINVAL: no clsact qdisc on the device (the kernel's answer).
    if (e == ENOENT || e == EINVAL) return info.Env().Null();
    if (e != 0) Fail("ERR_BPF_TC_QUERY", "bpf_tc_query", e, "query " + c.What(), c.log);
    return FilterToJs(info.Env(), c.ifindex, c.opts);
  });
}

// tcHookDestroy(netns, iface): remove the clsact qdisc (and with it every tc filter on it).
Napi::Value TcHookDestroy(const Napi::CallbackInfo &info) {
  return Guarded(info, "ERR_BPF_TC_HOOK", "bpf_tc_hook_destroy", [&]() -> Napi::Value {
    std::string ns = ArgOptStr(info, 0, "netns");
    NetnsGuard g(ns);
    int ifindex = ResolveIface(info, 1, ns, "ERR_BPF_TC_HOOK");
    LogCapture cap;
    LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex,
                .attach_point = static_cast<enum bpf_tc_attach_point>(BPF_TC_INGRESS | BPF_TC_EGRESS));
    int r = bpf_tc_hook_destroy(&hook);
    if (r < 0 && ErrnoOf(r) != ENOENT && ErrnoOf(r) != EINVAL)
      Fail("ERR_BPF_TC_HOOK", "bpf_tc_hook_destroy", ErrnoOf(r), "remove clsact qdisc from " + Where(ifindex, ns), cap.Take());
    return Napi::Boolean::New(info.Env(), r == 0);
  });
}

uint32_t XdpModeFlag(const std::string &mode) {
  if (mode == "generic") return XDP_FLAGS_SKB_MODE;
  if (mode == "native") return XDP_FLAGS_DRV_MODE;
  if (mode == "offload") return XDP_FLAGS_HW_MODE;
  if (mode == "auto") return 0;
  Fail("ERR_BPF_INVALID_ARG", "argument", EINVAL, "XDP mode must be generic, native, offload or auto; got '" + mode + "'");
}

// xdpAttach(netns, iface, progFd, mode, replace, expectedProgFd) -> { ifindex }
// replace=false refuses to overwrite an attached program (EBUSY/EEXIST); expectedProgFd >= 0
// replaces atomically only if that program is the one attached.
Napi::Value XdpAttach(const Napi::CallbackInfo &info) {
  return Guarded(info, "ERR_BPF_XDP_ATTACH", "bpf_xdp_attach", [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    std::string ns = ArgOptStr(info, 0, "netns");
    int progFd = ArgInt(info, 2, "progFd");
    std::string mode = ArgStr(info, 3, "mode");
    bool replace = ArgBool(info, 4, "replace");
    int expected = ArgInt(info, 5, "expectedProgFd");
    uint32_t flags = XdpModeFlag(mode);
    LIBBPF_OPTS(bpf_xdp_attach_opts, opts);
    if (expected >= 0) {
      flags |= XDP_FLAGS_REPLACE;
      opts.old_prog_fd = expected;
    } else if (!replace) {
      flags |= XDP_FLAGS_UPDATE_IF_NOEXIST;
    }
    NetnsGuard g(ns);
    int ifindex = ResolveIface(info, 1, ns, "ERR_BPF_XDP_ATTACH");
    LogCapture cap;
    int r = bpf_xdp_attach(ifindex, progFd, flags, &opts);
    if (r < 0)
      Fail("ERR_BPF_XDP_ATTACH", "bpf_xdp_attach", ErrnoOf(r),
           "attach prog fd " + std::to_string(progFd) + " as " + mode + " XDP on " + Where(ifindex, ns), cap.Take());
    Napi::Object o = Napi::Object::New(env);
    o.Set("ifindex", ifindex);
    return o;
  });
}

// xdpDetach(netns, iface, mode)
Napi::Value XdpDetach(const Napi::CallbackInfo &info) {
  return Guarded(info, "ERR_BPF_XDP_DETACH", "bpf_xdp_detach", [&]() -> Napi::Value {
    std::string ns = ArgOptStr(info, 0, "netns");
    std::string mode = ArgStr(info, 2, "mode");
    uint32_t flags = XdpModeFlag(mode);
    NetnsGuard g(ns);
    int ifindex = ResolveIface(info, 1, ns, "ERR_BPF_XDP_DETACH");
    LogCapture cap;
    int r = bpf_xdp_detach(ifindex, flags, nullptr);
    if (r < 0)
      Fail("ERR_BPF_XDP_DETACH", "bpf_xdp_detach", ErrnoOf(r), "detach " + mode + " XDP from " + Where(ifindex, ns), cap.Take());
    return info.Env().Undefined();
  });
}

// xdpQuery(netns, iface) -> { ifindex, attachMode, progId, nativeProgId, genericProgId, offloadProgId }
Napi::Value XdpQuery(const Napi::CallbackInfo &info) {
  return Guarded(info, "ERR_BPF_XDP_QUERY", "bpf_xdp_query", [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    std::string ns = ArgOptStr(info, 0, "netns");
    NetnsGuard g(ns);
    int ifindex = ResolveIface(info, 1, ns, "ERR_BPF_XDP_QUERY");
    LogCapture cap;
    LIBBPF_OPTS(bpf_xdp_query_opts, q);
    int r = bpf_xdp_query(ifindex, 0, &q);
    if (r < 0) Fail("ERR_BPF_XDP_QUERY", "bpf_xdp_query", ErrnoOf(r), "query XDP on " + Where(ifindex, ns), cap.Take());
    const char *mode = "none";
    switch (q.attach_mode) {
      case XDP_ATTACHED_DRV: mode = "native"; break;
      case XDP_ATTACHED_SKB: mode = "generic"; break;
      case XDP_ATTACHED_HW: mode = "offload"; break;
      case XDP_ATTACHED_MULTI: mode = "multi"; break;
      default: break;
    }
    Napi::Object o = Napi::Object::New(env);
    o.Set("ifindex", ifindex);
    o.Set("attachMode", mode);
    o.Set("progId", q.prog_id);
    o.Set("nativeProgId", q.drv_prog_id);
    o.Set("genericProgId", q.skb_prog_id);
    o.Set("offloadProgId", q.hw_prog_id);
    return o;
  });
}

}  // namespace

void InitNetif(Napi::Env env, Napi::Object exports) {
  exports.Set("ifindex", Napi::Function::New(env, Ifindex, "ifindex"));
  exports.Set("tcAttach", Napi::Function::New(env, TcAttach, "tcAttach"));
  exports.Set("tcDetach", Napi::Function::New(env, TcDetach, "tcDetach"));
  exports.Set("tcQuery", Napi::Function::New(env, TcQuery, "tcQuery"));
  exports.Set("tcHookDestroy", Napi::Function::New(env, TcHookDestroy, "tcHookDestroy"));
  exports.Set("xdpAttach", Napi::Function::New(env, XdpAttach, "xdpAttach"));
  exports.Set("xdpDetach", Napi::Function::New(env, XdpDetach, "xdpDetach"));
  exports.Set("xdpQuery", Napi::Function::New(env, XdpQuery, "xdpQuery"));
}

}  // namespace tortie
