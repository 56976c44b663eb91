# ktap-tally.awk: the one judge of KTAP output.  tests/check, tests/vm/run-vm
# and the guest's hmm-tests wrapper all use it (busybox awk runs it too, so
# POSIX awk only).
#
#   awk -f ktap-tally.awk -v expect=FILE [-v stale=1] LOG...
#       count: prints one "not ok - ktap: ..." line per problem, then a last
#       line "PASSED FAILED SKIPPED XFAIL" (SKIPPED does not include XFAIL)
#   awk -f ktap-tally.awk -v expect=FILE -v mode=rewrite LOG
#       rewrite: copies LOG, turning each failure that FILE expects, and that
#       failed at its pinned assertion, into "ok N NAME # XFAIL why [pin]"
#
# A suite starts at "TAP version"/"KTAP version" (or a second plan) and must
# print a plan "1..N" and exactly N numbered results, or it counts as one
# failure more: a binary that died midway or never started cannot lose its
# tests quietly.  "ok - ..." / "not ok - ..." lines are single checks of a
# runner (no plan).  A test's name is the first word of its description.
#
# Counting: "ok" passes; "not ok" fails; "# SKIP reason" and "# XFAIL
# reason" are never passes.  A skip counts as skipped only if FILE has
#   skip NAME | REASON | why
# and the printed reason contains REASON; an XFAIL only if FILE has
#   xfail NAME | PIN | why
# (the rewrite matched PIN, a substring of the test's diagnostics, e.g.
# "hmm-tests.c:991:migrate:Expected ret (-95) == 0 (0)").  Anything else -
# a skip without reason or not expected, XPASS, TODO, a whole-suite skip -
# is a failure.  With stale=1 a line of FILE whose test did not end the way
# it says is a failure too, so the file cannot keep excusing a test that
# has changed.  Blank lines and lines starting with # in FILE are comments.

function trim(s) {
	sub(/^[ \t]+/, "", s)
	sub(/[ \t]+$/, "", s)
	return s
}

# Rewrite mode feeds a live log: every line goes out at once.
function emit(line) {
	print line
	fflush()
}

function problem(msg) {
	if (mode == "rewrite") {
		emit("# ktap: " msg)
	} else {
		print "not ok - ktap: " msg
		nfail++
	}
}

# Splits the result line l into R_ok, R_num ("" for "ok - "), R_name,
# R_dir (SKIP, XFAIL, XPASS, TODO or "") and R_reason.
function parse_result(l,    rest, p, desc, tail, kw) {
	R_ok = (l ~ /^ok /)
	rest = l
	sub(/^(not )?ok /, "", rest)
	if (rest ~ /^- /) {
		R_num = ""
		rest = substr(rest, 3)
	} else {
		R_num = rest
		sub(/[^0-9].*/, "", R_num)
		sub(/^[0-9]+ ?/, "", rest)
	}
	if (substr(rest, 1, 2) == "# ") {
		desc = ""
		tail = substr(rest, 3)
	} else if ((p = index(rest, " # ")) > 0) {
		desc = substr(rest, 1, p - 1)
		tail = substr(rest, p + 3)
	} else {
		desc = rest
		tail = ""
	}
	R_dir = ""
	R_reason = ""
	kw = tail
	sub(/[ \t].*/, "", kw)
	kw = toupper(kw)
	if (kw == "SKIP" || kw == "XFAIL" || kw == "XPASS" || kw == "TODO") {
		R_dir = kw
		R_reason = tail
		sub(/^[^ \t]*/, "", R_reason)
		R_reason = trim(R_reason)
	}
	R_name = trim(desc)
	sub(/[ \t].*/, "", R_name)
}

function forget_pins(    k) {
	for (k in pinned)
		delete pinned[k]
}

function open_suite(where) {
	close_suite()
	in_suite = 1
	s_where = where
	s_plan = -1
	s_count = 0
	s_first = ""
}

function close_suite(    what) {
	if (!in_suite)
		return
	in_suite = 0
	what = "suite at " s_where
	if (s_first != "")
		what = what " (first test " s_first ")"
	if (s_plan < 0)
		problem(what " printed no plan (1..N)")
	else if (s_count != s_plan)
		problem(what " planned " s_plan " tests but reported " s_count)
}

function judge(    want) {
	seen[R_name] = R_dir != "" ? R_dir : (R_ok ? "pass" : "fail")
	if (R_dir == "SKIP") {
		if (R_reason == "")
			problem(R_name ": skipped without a reason")
		else if (ekind[R_name] != "skip")
			problem(R_name ": unexpected skip (" R_reason "); not in " expect)
		else if (index(R_reason, epin[R_name]) == 0)
			problem(R_name ": skipped (" R_reason "), but " expect " expects the reason \"" epin[R_name] "\"")
		else
			nskip++
	} else if (R_dir == "XFAIL") {
		if (ekind[R_name] != "xfail")
			problem(R_name ": expected failure that " expect " does not list (" R_reason ")")
		else
			nxfail++
	} else if (R_dir != "") {
		problem(R_name ": " R_dir " is not a pass (" R_reason ")")
	} else if (R_ok) {
		npass++
	} else {
		nfail++
	}
}

# Rewrite mode: a failure listed as xfail becomes an XFAIL only when its
# diagnostics (the lines since the previous result) hold the pin.  Each
# line is matched against the pins as it comes (pinned[]), never kept: a
# log of megabytes between two results costs no more than its reading.
function rewrite(    name, pin) {
	name = R_name
	if (R_num == "" || R_dir != "" || ekind[name] != "xfail") {
		emit($0)
		return
	}
	pin = epin[name]
	if (!R_ok && (pin in pinned)) {
		emit("# ktap: was \"" $0 "\": failed at its pinned assertion")
		emit("ok " R_num " " name " # XFAIL " ewhy[name] " [" pin "]")
	} else if (!R_ok) {
		problem(name " is expected to fail at \"" pin "\", but failed elsewhere")
		emit($0)
	} else {
		emit("not ok " R_num " " name " passed, but " expect " lists it as an expected failure at \"" pin "\": update it")
	}
}

BEGIN {
	if (expect == "") {
		print "not ok - ktap: ktap-tally.awk needs -v expect=FILE (/dev/null: nothing expected)"
		usage_error = 1
		exit 2
	}
	lineno = 0
	while ((r = (getline l < expect)) > 0) {
		lineno++
		sub(/\r$/, "", l)
		if (l ~ /^[ \t]*(#|$)/)
			continue
		n = split(l, fld, / \| /)
		split(trim(fld[1]), kw, /[ \t]+/)
		name = kw[2]
		if ((kw[1] != "skip" && kw[1] != "xfail") || name == "" || n != 3 ||
		    trim(fld[2]) == "" || trim(fld[3]) == "") {
			problem(expect ":" lineno ": want \"skip|xfail NAME | REASON-or-PIN | why\"")
			continue
		}
		if (name in ekind)
			problem(expect ":" lineno ": " name " listed twice")
		ekind[name] = kw[1]
		epin[name] = trim(fld[2])
		ewhy[name] = trim(fld[3])
		if (kw[1] == "xfail")
			pins[++npins] = epin[name]
	}
	if (r < 0)
		problem("cannot read " expect)
	close(expect)
}

{
	sub(/\r$/, "")
	where = FILENAME ":" FNR
}

/^K?TAP version / {
	open_suite(where)
	forget_pins()
	if (mode == "rewrite")
		emit($0)
	next
}

/^1\.\.[0-9]+/ {
	n = $0
	sub(/^1\.\./, "", n)
	sub(/[^0-9].*/, "", n)
	if (!in_suite || s_plan >= 0)
		open_suite(where)
	s_plan = n + 0
	if (mode == "rewrite")
		emit($0)
	if (s_plan == 0)
		problem("suite at " where " skipped as a whole: " $0)
	next
}

/^(not )?ok [0-9]+( |$)/ {
	parse_result($0)
	if (!in_suite)
		open_suite(where)
	s_count++
	if (s_first == "")
		s_first = R_name
	if (mode == "rewrite")
		rewrite()
	else
		judge()
	forget_pins()
	next
}

/^(not )?ok - / {
	parse_result($0)
	if (mode == "rewrite")
		emit($0)
	else
		judge()
	next
}

mode == "rewrite" {
	for (i = 1; i <= npins; i++)
		if (index($0, pins[i]) > 0)
			pinned[pins[i]] = 1
	emit($0)
}

END {
	if (usage_error)
		exit 2
	close_suite()
	if (mode == "rewrite")
		exit 0
	if (stale == 1) {
		for (name in ekind) {
			want = ekind[name] == "skip" ? "SKIP" : "XFAIL"
			if (!(name in seen))
				problem(expect " expects " name " to " ekind[name] ", but it did not run")
			else if (seen[name] != want)
				problem(expect " expects " name " to " ekind[name] ", but it ended " seen[name] ": update the file")
		}
	}
	print npass + 0, nfail + 0, nskip + 0, nxfail + 0
}
