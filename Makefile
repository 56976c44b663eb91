# hmirror: top-level build.
#
#   make          build everything; fails, naming them, if packages are
#                 missing: "make setup" installs them
#   make setup    install the Debian packages the build needs (scripts/setup)
#   make check    setup, then host unit tests + guest kselftests in QEMU +
#                 lint; ends with "N passed, N failed, N skipped"
#   make run      setup, then the main job: boot the guest, load the driver,
#                 exercise the device, print a summary
#   make lint     checkpatch --strict and sparse over the driver
#   make mutants  deliberate driver bugs the tests must catch (tests/mutants)
#
# Variables: BUILD (build dir, default build/: everything goes there),
# SMP, MEM (MiB), NUMA, DEVICES, KVM=1, STRESS_SECONDS, SEED,
# BACKEND=both|gup|hmm (make run; the stress's contexts), MODEL_ARGS (make
# run: extra hmirror-dev options, e.g. --poll-adapt=off),
# KERNEL=stock|debug|kasan|all: the guest kernel flavour(s).  "debug" is built
# once per machine from linux-source-6.12 with lockdep, DEBUG_VM and
# friends (scripts/build-debug-kernel, cached in /var/cache/hmirror);
# "make check" runs both flavours by default, "make run" the stock one.
# KERNEL=<path of a built Linux tree>: that kernel instead ("make check",
# "make run"); its .config is checked first (scripts/check-kernel-tree,
# kernel/hmirror.config has what it needs), hmirror.ko is built against it
# in $(BUILD)/kmod-tree ("make module-tree").
#
# Nothing here may be evaluated while make reads this file that depends on
# a package scripts/setup installs (pkg-config, libdrm, the kernel
# headers...): on a new machine make reads it before setup has run.  Such
# things are computed in recipes; tests/lint-makefile guards this.
BUILD    ?= build
B        := $(abspath $(BUILD))
# Every script finds the build tree through this.
export HMIRROR_BUILD := $(B)
KSRC     := $(B)/ksrc
SMP      ?= 2
MEM      ?= 1024
NUMA     ?= 2
DEVICES  ?= 1
KVM      ?= 0
KERNEL   ?= all
# A KERNEL that is not a flavour is a tree: its absolute path.
KTREE    := $(if $(filter-out stock debug kasan all,$(KERNEL)),$(abspath $(KERNEL)))

CC       ?= gcc
USER_CFLAGS := -std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Werror \
	-Iinclude -Iuserspace
# The kselftest harness relies on GNU C extensions.
GUEST_CFLAGS := -std=gnu11 -O2 -g -Wall -Wextra -Werror -Iinclude -Iuserspace \
	-isystem $(KSRC)/tools/testing/selftests
# Shell, not make, asks pkg-config, when the recipe runs; "&&" stops the
# recipe with pkg-config's own message if libdrm is missing.
DRM_CFLAGS = drm_cflags=$$(pkg-config --cflags libdrm) &&
DRM_LIBS   = drm_libs=$$(pkg-config --libs libdrm) &&
# The kernel the module is built against, chosen by scripts/setup.
KDIR       = /lib/modules/$$(cat $(B)/kernel-release)/build

LIB       := $(B)/userspace/libhmirror.a
TOOLS     := $(B)/guest/hmirror-stat $(B)/guest/hmirror-stress $(B)/guest/hmirror-bench
GUEST_TESTS := $(patsubst tests/guest/%.c,$(B)/guest/%,$(wildcard tests/guest/*_test.c))

.PHONY: all setup deps module model userspace guest check run lint clean \
	host-check kernel-debug module-debug kernel-kasan module-kasan fuzz mutants \
	kernel-tree-check module-tree

all: module model userspace guest $(if $(KTREE),module-tree)

# With KERNEL=<tree>, the tree's .config is checked before anything else:
# setup and every build step come after it.
setup: $(if $(KTREE),kernel-tree-check)
	scripts/setup

# Every build step runs after this check (order-only: it never makes
# anything rebuild).  It installs nothing, except that "make check", "make
# run" and "make mutants" run "make setup" first.
deps: $(if $(KTREE),kernel-tree-check) \
	$(if $(filter check run mutants,$(MAKECMDGOALS)),setup)
	@scripts/setup --check

kernel-tree-check:
	@scripts/check-kernel-tree $(if $(KTREE),$(KTREE),$(error KERNEL=<path of a built Linux tree> wanted))

$(KSRC)/.done: scripts/extract-ksrc | deps
	scripts/extract-ksrc $(KSRC)
	@touch $@

# W=1 warnings are errors here; sparse runs in "make lint".
module: deps
	scripts/build-module $(B)/kmod $(KDIR) W=1 KCFLAGS=-Werror modules

# The debug kernels (lockdep, DEBUG_VM...; kasan adds KASAN) and the
# module built against each.
kernel-debug: deps
	scripts/build-debug-kernel > $(B)/debug-kernel-dir.tmp
	mv $(B)/debug-kernel-dir.tmp $(B)/debug-kernel-dir

kernel-kasan: deps
	scripts/build-debug-kernel --kasan > $(B)/kasan-kernel-dir.tmp
	mv $(B)/kasan-kernel-dir.tmp $(B)/kasan-kernel-dir

module-debug: kernel-debug
	scripts/build-module $(B)/kmod-debug $$(cat $(B)/debug-kernel-dir)/build \
		W=1 KCFLAGS=-Werror modules

module-kasan: kernel-kasan
	scripts/build-module $(B)/kmod-kasan $$(cat $(B)/kasan-kernel-dir)/build \
		W=1 KCFLAGS=-Werror modules

# hmirror.ko for KERNEL=<tree>, against its Module.symvers.
module-tree: deps
	scripts/build-module $(B)/kmod-tree $(if $(KTREE),$(KTREE),$(error KERNEL=<path of a built Linux tree> wanted)) \
		W=1 KCFLAGS=-Werror modules

model: deps
	$(MAKE) -C qemu-device O=$(B)/qemu-device

userspace: $(LIB) $(TOOLS)

$(B)/userspace/%.o: userspace/%.c userspace/*.h include/uapi/*.h | deps
	@mkdir -p $(dir $@)
	$(DRM_CFLAGS) $(CC) $(USER_CFLAGS) $$drm_cflags -c -o $@ $<

$(LIB): $(B)/userspace/libhmirror.o
	$(AR) rcs $@ $^

$(B)/guest/hmirror-%: userspace/hmirror-%.c $(LIB)
	@mkdir -p $(dir $@)
	$(DRM_CFLAGS) $(DRM_LIBS) $(CC) $(USER_CFLAGS) $$drm_cflags -o $@ $< $(LIB) \
		$$drm_libs -lpthread

# The guest's binaries; tests/vm/run-vm adds the scripts (tests/vm/scripts)
# and the expectation file (tests/guest/expect.<flavour>).
guest: $(GUEST_TESTS) $(TOOLS) $(B)/guest/hmm-tests

# The kernel's own hmm-tests, unmodified, built from linux-source-6.12 with
# the kernel's selftest flags (it is not this project's code).
$(B)/guest/hmm-tests: $(KSRC)/.done
	@mkdir -p $(dir $@)
	$(CC) -O2 -Wall -I$(KSRC) -o $@ \
		$(KSRC)/tools/testing/selftests/mm/hmm-tests.c -lpthread

$(B)/guest/%_test: tests/guest/%_test.c $(LIB) $(KSRC)/.done include/*.h include/uapi/*.h
	@mkdir -p $(dir $@)
	$(DRM_CFLAGS) $(DRM_LIBS) $(CC) $(GUEST_CFLAGS) $$drm_cflags -o $@ $< $(LIB) \
		$$drm_libs -lpthread

# SELFTESTS: the kselftest harness of this build tree, not build/'s.
HOST_MAKE = $(MAKE) -C tests/host O=$(B)/host \
	SELFTESTS=$(KSRC)/tools/testing/selftests

host-check: model $(KSRC)/.done
	$(HOST_MAKE) check

# The device model's libFuzzer target, for SECONDS (default 60).
SECONDS ?= 60
fuzz: deps
	$(MAKE) -C tests/fuzz O=$(B)/fuzz run SECONDS=$(SECONDS)

lint: $(KSRC)/.done
	tests/lint $(KSRC)

ifneq ($(KTREE),)
CHECK_DEPS := module-tree
else ifeq ($(KERNEL),stock)
CHECK_DEPS :=
else ifeq ($(KERNEL),kasan)
CHECK_DEPS := module-kasan
else
CHECK_DEPS := module-debug
endif

check: all $(KSRC)/.done $(CHECK_DEPS)
	KERNEL=$(if $(KTREE),$(KTREE),$(KERNEL)) tests/check

RUN_KERNEL = $(if $(KTREE),$(KTREE),$(if $(filter debug,$(KERNEL)),debug,stock))

STRESS_SECONDS ?= 60
SEED     ?= 1
BACKEND  ?= both

run: all $(if $(filter debug,$(KERNEL)),module-debug) $(if $(KTREE),module-tree)
	SMP=$(SMP) MEM=$(MEM) NUMA=$(NUMA) DEVICES=$(DEVICES) KVM=$(KVM) \
		KERNEL=$(RUN_KERNEL) STRESS_SECONDS=$(STRESS_SECONDS) SEED=$(SEED) \
		BACKEND=$(BACKEND) MODEL_ARGS="$(MODEL_ARGS)" tests/run-main

# Deliberate driver bugs (tests/mutants/*.patch), each built and run
# against the guest suites (stock kernel; device-memory ones on the debug
# kernel): "N passed" = mutants caught.
mutants: all $(KSRC)/.done kernel-debug
	tests/mutants/run-mutants

clean:
	rm -rf $(B)/kmod* $(B)/userspace $(B)/guest $(B)/qemu-device $(B)/host \
		$(B)/check $(B)/mutants
