# Thin wrappers the README names. Every target is one cargo (or script) call.
CARGO ?= cargo
BIN := target/release/firehose-kit

.PHONY: build demo test test-compat test-aws report-screenshot lint lint-templates fmt bench soak fuzz install clean docs

build:
	$(CARGO) build --release --locked

# The demo runs the debug build: the same profile as make test, so a fresh clone compiles every dependency once
# (the release build is for make install and make bench).
demo:
	$(CARGO) run --locked -- demo

# Every crate of the workspace: unit tests, the integration tests (tests/it), the emulator's doctests and its
# example of testing a producer (crates/emulator/examples/producer.rs).
test:
	$(CARGO) test --workspace --locked

# Other clients against the emulator (boto3, the AWS CLI, the AWS SDK for JavaScript v3 from npm, Terraform with the
# AWS provider from a filesystem mirror: TF_PROVIDER_MIRROR or /opt/tf-plugins, skipped without), the HTML report in
# headless Chromium (apt-get install chromium; screenshot in target/report-screenshot.png), and the full
# setup → send → verify → status → teardown cycle against moto server (needs `pip install 'moto[server]' boto3 awscli`).
test-compat:
	cd tests/compat/js && npm ci --no-audit --no-fund --loglevel=error
	$(CARGO) test --locked --test it compat -- --ignored --test-threads 1

# The demo's HTML report and its screenshot in docs/ (needs headless Chromium: apt-get install chromium).
report-screenshot: build
	mkdir -p target/report-screenshot
	cd target/report-screenshot && ../release/firehose-kit demo --no-progress --report demo-report.html
	chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1280,2200 \
		--user-data-dir=target/report-screenshot/profile \
		--screenshot=docs/demo-report.png file://$(CURDIR)/target/report-screenshot/demo-report.html \
		2>target/report-screenshot/chromium.log

# The real-AWS acceptance test (setup → send → verify → doctor → teardown with unique names, always cleaned up).
# Uses the standard credential chain and AWS_REGION; without credentials it fails with "no AWS credentials: nothing
# was tested" (exit non-zero: a green run means AWS was tested).
# Permissions: templates/operator-policy.json. See docs/aws.md.
test-aws:
	$(CARGO) test --locked --test it aws_acceptance -- --ignored --nocapture

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --locked --all-targets -- -D warnings

lint-templates:
	@if [ -f templates/cloudformation.yaml ]; then cfn-lint templates/cloudformation.yaml; fi

fmt:
	$(CARGO) fmt --all

bench: build
	$(CARGO) build --release --locked --example loadgen
	cd bench/kinesalite && npm ci --no-audit --no-fund --loglevel=error || echo "npm ci in bench/kinesalite failed: the kinesalite rows are skipped"
	./bench/run

# Long runs, not in CI: the crash loop with SOAK_KILLS kills (500), then SOAK_MINUTES (10) of load with delivery
# failures on and off, sampling the emulator's memory, descriptors, threads and state; writes docs/soak.svg and
# the soak section of docs/benchmarks.md.
soak: build
	$(CARGO) build --release --locked --example soak
	FIREHOSE_KIT_CRASH_KILLS=$${SOAK_KILLS:-500} $(CARGO) test --release --locked --test it crash:: -- --nocapture
	./target/release/examples/soak target/release/firehose-kit

# Coverage-guided fuzzing (cargo-fuzz, installed when missing; RUSTC_BOOTSTRAP=1 on stable Rust): every target
# for FUZZ_SECONDS (60) each, or FUZZ_TARGETS="a b". See docs/fuzzing.md.
fuzz:
	FUZZ_SECONDS=$${FUZZ_SECONDS:-60} ./fuzz/run

# Regenerates docs/cli.md from the command-line definitions (a test keeps them equal).
docs:
	UPDATE_DOCS=1 $(CARGO) test --locked --lib cli::tests::docs_cli_md_matches_the_help

install:
	$(CARGO) install --locked --path .

clean:
	$(CARGO) clean
