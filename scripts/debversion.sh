#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# debversion.sh VERSION DATE: `git describe --always --dirty` output as a Debian version, which
# must start with a digit and sort the way releases do:
#   v1.2.3                  -> 1.2.3
#   v1.2.3-rc1              -> 1.2.3~rc1                    (before 1.2.3)
#   v1.2.3-4-gabcdef[-dirty] -> 1.2.3+git4.gabcdef[.dirty]   (after 1.2.3, before 1.2.4)
#   abcdef[-dirty] (no tag)  -> 0~gitDATE.abcdef[.dirty]      (before any release)
set -eu
v=$1 date=$2
case $v in
v[0-9]*)
	v=${v#v}
	dirty=
	case $v in *-dirty) v=${v%-dirty} dirty=.dirty ;; esac
	case $v in
	*-*-g*) base=${v%-*-g*} rest=${v#"$base"-} n=${rest%%-*} hash=${rest#*-}
		echo "$(echo "$base" | tr - '~')+git$n.$hash$dirty" ;;
	*) echo "$(echo "$v" | tr - '~')$dirty" ;;
	esac ;;
*) echo "0~git$date.$(echo "$v" | sed 's/-dirty$/.dirty/; s/[^0-9A-Za-z.+~]/./g')" ;;
esac
