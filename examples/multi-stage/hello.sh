#!/bin/sh
echo "hello, WORLD"
