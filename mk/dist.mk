# Installable packages of every language (`make dist`, into dist/) and their
# test from outside the repository (`make test-install`, tests/install/run.py:
# each package is installed into a fresh project in a temporary folder, whose
# program reads the golden vectors written by Python).
#
#   dist/dsxir_checkpoint-<v>.tar.gz     Python sdist
#   dist/dsxir_checkpoint-<v>-<tag>.whl  Python wheel, with the C accelerator when it compiles
#   dist/dsxir-checkpoint-<v>.tgz        npm package @dsxir/checkpoint (compiled dist/src)
#   dist/dsxir-checkpoint-<v>.jar, .pom  Maven com.dsxir:dsxir-checkpoint, also installed in ~/.m2
#   dist/dsxir-checkpoint-<v>.crate      Rust crate, with the .proto files build.rs compiles
#
# Go has no artifact: the module go/ is used from source (require + replace).
# Python and Rust are packaged from a staging copy of the files a checkout has
# (tracked or untracked, not ignored), so no build output of the working tree
# gets in; the staging copy adds the LICENSE (and, for Rust, the protos).

DIST := dist
DIST_ABS = $(abspath $(DIST))
# The Maven project version (the first <version> at the top level of java/pom.xml).
JAVA_DIST_VERSION = $(shell sed -n 's:^  <version>\([^<]*\)</version>.*:\1:p' java/pom.xml | head -n 1)
# cargo's build folder for the consumer of test-install, kept between runs.
INSTALL_RUST_TARGET := rust/target/test-install
# Some of python typescript go java rust (default: all), e.g. make test-install INSTALL_LANGUAGES=go
INSTALL_LANGUAGES ?=

TEST_TARGETS += test-install

.PHONY: dist dist-python dist-typescript dist-java dist-rust test-install

# $(call dist_stage,DIR,STAGE): copies the files of DIR that a checkout has
# (tracked or untracked, not ignored, not deleted) into STAGE, without DIR/.
dist_stage = git ls-files -z --cached --others --exclude-standard -- $(1) \
  | while IFS= read -r -d '' f; do if [ -f "$$f" ]; then printf '%s\0' "$$f"; fi; done \
  | tar --null -T - -cf - | tar -C $(2) --strip-components=1 -xf -

dist: dist-python dist-typescript dist-java dist-rust ## every language's package into dist/ (the Maven jar also into ~/.m2)

# The sdist by setuptools' PEP 517 backend, the wheel by pip from the sdist
# (so the sdist is known to build); both with the .venv's pinned setuptools.
dist-python: setup ## Python sdist and wheel (C accelerator when it compiles) into dist/
	mkdir -p $(DIST) && rm -f $(DIST)/dsxir_checkpoint-*
	stage=$$(mktemp -d) && trap 'rm -rf "$$stage"' EXIT && \
	  $(call dist_stage,python,"$$stage") && cp LICENSE "$$stage/" && \
	  (cd "$$stage" && $(abspath $(PY)) -c 'import sys; from setuptools import build_meta; build_meta.build_sdist(sys.argv[1])' $(DIST_ABS) >/dev/null)
	$(PY) -m pip wheel --quiet --disable-pip-version-check --no-deps --no-build-isolation \
	  --wheel-dir $(DIST) $(DIST)/dsxir_checkpoint-*.tar.gz
	@$(PY) -c 'import sys, zipfile; w = sys.argv[1]; c = any(n.startswith("dsxir/_accel") for n in zipfile.ZipFile(w).namelist()); print(w, "(with the C accelerator)" if c else "(pure Python: the C accelerator did not compile)")' $(DIST)/dsxir_checkpoint-*.whl

# `npm pack` runs the package's prepack script: a clean tsc build of dist/.
dist-typescript: $(TYPESCRIPT_STAMP) ## npm tarball of @dsxir/checkpoint, with its compiled dist/src, into dist/
	mkdir -p $(DIST) && rm -f $(DIST)/dsxir-checkpoint-*.tgz
	cd $(TYPESCRIPT_DIR) && npm pack --loglevel=error --pack-destination $(DIST_ABS) >/dev/null
	@ls $(DIST)/dsxir-checkpoint-*.tgz

dist-java: ## Maven jar: mvn install into the local repository (~/.m2), a copy and its pom into dist/
	mkdir -p $(DIST) && rm -f $(DIST)/dsxir-checkpoint-*.jar $(DIST)/dsxir-checkpoint-*.pom
	cd java && $(JAVA_MVN) $(JAVA_MVN_FLAGS) -q install -DskipTests
	cp java/target/dsxir-checkpoint.jar $(DIST)/dsxir-checkpoint-$(JAVA_DIST_VERSION).jar
	cp java/pom.xml $(DIST)/dsxir-checkpoint-$(JAVA_DIST_VERSION).pom
	@ls $(DIST)/dsxir-checkpoint-*.jar $(DIST)/dsxir-checkpoint-*.pom

# build.rs compiles ../proto in a checkout; the packaged crate carries the
# protos in proto/. Not verified here: test-install builds the crate.
dist-rust: ## Rust crate (cargo package), with the .proto files it compiles, into dist/
	mkdir -p $(DIST) && rm -f $(DIST)/dsxir-checkpoint-*.crate
	stage=$$(mktemp -d) && trap 'rm -rf "$$stage"' EXIT && \
	  $(call dist_stage,rust,"$$stage") && cp LICENSE "$$stage/" && \
	  cp -R --parents proto/dsxir/optimizer_session "$$stage/" && \
	  (cd "$$stage" && $(RUST_CARGO) package --quiet --locked --allow-dirty --no-verify) && \
	  cp "$$stage"/target/package/dsxir-checkpoint-*.crate $(DIST)/
	@ls $(DIST)/dsxir-checkpoint-*.crate

test-install: dist ## install each package of dist/ into a fresh project outside the repository and read the vectors
	$(PY) tests/install/run.py --dist $(DIST) --rust-target-dir $(INSTALL_RUST_TARGET) $(INSTALL_LANGUAGES)
