"""engines/kubernetes"""
