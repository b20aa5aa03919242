"""gateway/common"""
