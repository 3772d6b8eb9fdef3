/*
 * Unit tests (TAP) for the app's environment file (appenv.c): names,
 * values as systemd reads them, the line format written back, and edits.
 * The autopkgtest `ssh` checks the same values as the app sees them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zdd.h"
#include "../../lib/tap.h"

static char why[ZDD_WHY_MAX];
#define WHY why, sizeof(why)

/* The value systemd would read from one line, or NULL. */
static const char *
parsed(const char *line, const char *want_key)
{
	static char key[APPENV_KEY_MAX + 2], value[APPENV_VALUE_MAX + 2];

	if (appenv_line_parse(line, strlen(line), key, sizeof(key), value,
		sizeof(value)) < 0 ||
	    strcmp(key, want_key) != 0)
		return NULL;
	return value;
}

static bool
same(const char *a, const char *b)
{
	return a != NULL && b != NULL && strcmp(a, b) == 0;
}

/* Formats then parses value back. */
static bool
round_trip(const char *value)
{
	char line[APPENV_KEY_MAX + 2 * APPENV_VALUE_MAX + 8];
	size_t n;

	if (appenv_format("K", value, line, sizeof(line)) < 0)
		return false;
	n = strlen(line);
	if (n == 0 || line[n - 1] != '\n')
		return false;
	line[n - 1] = '\0';
	return same(parsed(line, "K"), value);
}

static char *
edit(const char *old, char *const *set, size_t nset, char *const *unset,
    size_t nunset, bool *changed)
{
	char *out = NULL;

	if (appenv_edit(old, set, nset, unset, nunset, &out, changed, WHY) < 0)
		return NULL;
	return out;
}

static void
test_names(void)
{
	char key[APPENV_KEY_MAX + 2], longname[APPENV_KEY_MAX + 8];
	const char *value;

	ok(appenv_key_valid("DATABASE_URL", WHY), "DATABASE_URL is a name");
	ok(appenv_key_valid("_x9", WHY), "_x9 is a name");
	ok(!appenv_key_valid("9x", WHY), "a name may not start with a digit");
	ok(!appenv_key_valid("A-B", WHY), "A-B is not a name");
	ok(!appenv_key_valid("", WHY), "the empty name is refused");
	ok(!appenv_key_valid("LISTEN_FDS", WHY) && strstr(why, "systemd"),
	    "LISTEN_FDS is systemd's: %s", why);
	ok(!appenv_key_valid("NOTIFY_SOCKET", WHY), "NOTIFY_SOCKET is refused");
	ok(!appenv_key_valid("ZDD_RELEASE", WHY), "ZDD_* is ours");
	ok(appenv_key_valid("PATH", WHY), "PATH may be set (as on Heroku)");
	memset(longname, 'A', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	ok(!appenv_key_valid(longname, WHY), "a name over %d is refused",
	    APPENV_KEY_MAX);
	ok(appenv_assignment_parse("A=b=c", key, sizeof(key), &value, WHY) ==
		    0 &&
		strcmp(key, "A") == 0 && strcmp(value, "b=c") == 0,
	    "A=b=c sets A to b=c");
	ok(appenv_assignment_parse("A=", key, sizeof(key), &value, WHY) == 0 &&
		value[0] == '\0',
	    "A= sets A to the empty value");
	ok(appenv_assignment_parse("hunter2", key, sizeof(key), &value, WHY) <
		    0 &&
		strstr(why, "hunter2") == NULL,
	    "a value without a name is refused, and not echoed: %s", why);
	ok(appenv_assignment_parse("A=x\ny", key, sizeof(key), &value, WHY) < 0,
	    "a value with a newline is refused");
	ok(appenv_assignment_parse("A", key, sizeof(key), NULL, WHY) == 0,
	    "A is a name to unset");
	ok(appenv_assignment_parse("A=1", key, sizeof(key), NULL, WHY) < 0,
	    "A=1 is not a name to unset");
	{
		char *dup[] = { "A=1", "B=2", "A=3" };
		char *fine[] = { "A=1", "AB=2" };

		ok(appenv_args_check(true, dup, 3, WHY) < 0 &&
			strstr(why, "twice"),
		    "a name given twice is refused: %s", why);
		ok(appenv_args_check(true, fine, 2, WHY) == 0,
		    "A and AB are two names");
		ok(appenv_args_check(true, fine, 0, WHY) < 0,
		    "set with nothing is refused");
	}
}

static void
test_parse(void)
{
	ok(same(parsed("A=plain", "A"), "plain"), "A=plain");
	ok(same(parsed("  A = spaced  ", "A"), "spaced"),
	    "blanks around the name and after an unquoted value are dropped");
	ok(same(parsed("A=\"x y\"", "A"), "x y"), "a double-quoted value");
	ok(same(parsed("A='x \"y\" $z'", "A"), "x \"y\" $z"),
	    "a single-quoted value is literal");
	ok(same(
	       parsed("A=\"a\\\"b\\\\c\\$d\\`e\\nf\"", "A"), "a\"b\\c$d`e\\nf"),
	    "in double quotes \\ escapes \" \\ $ ` only");
	ok(same(parsed("A=x\\ y", "A"), "x y"),
	    "unquoted, \\ escapes the next character");
	ok(same(parsed("A=", "A"), ""), "A= is empty");
	ok(parsed("# A=1", "A") == NULL, "a # comment");
	ok(parsed("; A=1", "A") == NULL, "a ; comment");
	ok(parsed("A=\"open", "A") == NULL,
	    "an open quote (a value on several lines) is not one line");
	ok(parsed("A=x\\", "A") == NULL, "nor is a trailing backslash");
	ok(parsed("no equals", "no") == NULL, "a line without = is not one");
}

static void
test_format(void)
{
	char line[64];

	ok(appenv_format("A", "plain-1.2/x:y@z", line, sizeof(line)) == 0 &&
		strcmp(line, "A=plain-1.2/x:y@z\n") == 0,
	    "a plain value is written as it is: %s", line);
	ok(appenv_format("A", "x y", line, sizeof(line)) == 0 &&
		strcmp(line, "A=\"x y\"\n") == 0,
	    "a value with a blank is quoted");
	ok(appenv_format("A",
	       "0123456789012345678901234567890123456789"
	       "0123456789012345678901234567890",
	       line, sizeof(line)) < 0,
	    "a line longer than the buffer fails");
	ok(round_trip(""), "round trip: the empty value");
	ok(round_trip(" lead and trail "), "round trip: blanks at both ends");
	ok(round_trip("'single' \"double\""), "round trip: quotes");
	ok(round_trip("$HOME `id` \\ \\\\ \\n"),
	    "round trip: $ ` and backslashes");
	ok(round_trip("#not a comment ;x"), "round trip: # and ;");
	ok(round_trip("tab\there"), "round trip: a tab");
	ok(round_trip("postgres://u:p%40ss@db:5432/app?ssl=true&x=1"),
	    "round trip: a database URL");
}

static void
test_edit(void)
{
	const char *file = "# keep me\nA=1\nB=\"two words\"\n\nA=dup\n";
	char *setA[] = { "A=9" }, *setB[] = { "B=two words" };
	char *setC[] = { "C=new", "A=1" }, *unA[] = { "A" }, *unZ[] = { "Z" };
	bool changed;
	char *out;

	out = edit(file, setA, 1, NULL, 0, &changed);
	ok(out && changed &&
		strcmp(out, "# keep me\nA=9\nB=\"two words\"\n\n") == 0,
	    "set replaces the first line, drops the duplicate, keeps the rest");
	free(out);
	out = edit("B=\"two words\"\n", setB, 1, NULL, 0, &changed);
	ok(out && !changed, "the same value is no change, quoted or not");
	free(out);
	out = edit("A=1\n", setC, 2, NULL, 0, &changed);
	ok(out && changed && strcmp(out, "A=1\nC=new\n") == 0,
	    "a new name is appended");
	free(out);
	out = edit(file, NULL, 0, unA, 1, &changed);
	ok(out && changed && strcmp(out, "# keep me\nB=\"two words\"\n\n") == 0,
	    "unset drops every line of the name");
	free(out);
	out = edit(file, NULL, 0, unZ, 1, &changed);
	ok(out && !changed && strcmp(out, file) == 0,
	    "unset of a name not set changes nothing");
	free(out);
	out = edit("", setA, 1, NULL, 0, &changed);
	ok(out && changed && strcmp(out, "A=9\n") == 0, "set into no file");
	free(out);
	out = edit("A=1", setA, 1, NULL, 0, &changed);
	ok(out && strcmp(out, "A=9\n") == 0, "a last line without newline");
	free(out);
	ok(edit("X=\"open\nA=1\n", setA, 1, NULL, 0, &changed) == NULL &&
		strstr(why, "line 1"),
	    "a file with a value on several lines is not edited: %s", why);
}

int
main(void)
{
	test_names();
	test_parse();
	test_format();
	test_edit();
	return tap_done();
}
